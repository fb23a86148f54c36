//! Applying or publishing a saved plan: every input's hash checked, the inputs decided again
//! at the saved time (the decision must be the saved one), and, when time has passed since,
//! decided again now (the same changes, no new error; keyroll.lock as of now).

use std::path::Path;

use time::OffsetDateTime;

use super::{SavedError, SavedInputs, SavedPlan, lock_bytes};
use crate::act::{self, Applied};
use crate::decide::plan::Plan;
use crate::load::{Inputs, Tree};
use crate::model::cert::rfc3339;

impl SavedPlan {
    /// Fails, naming every input that changed, unless `inputs` (read now) are what the plan
    /// was made from.
    pub fn check(
        &self,
        file: &Path,
        inputs: &Inputs,
        lock: Option<&[u8]>,
    ) -> Result<(), SavedError> {
        let drift = self.inputs.drift(&SavedInputs::of(inputs, lock));
        if drift.is_empty() {
            Ok(())
        } else {
            Err(SavedError::Drift {
                file: file.display().to_string(),
                drift,
            })
        }
    }

    /// `apply PLAN`: with the run lock held and the inputs read again, checks them, decides
    /// again from them as of the plan's own time, and writes only if that decision is the
    /// saved one (the same new bytes for every file, the same keyroll.lock), as one
    /// transaction. What is written is the decision's bytes, never the file's: so an edited
    /// plan (another key, a config left trusting nothing, malformed XML, a lock that
    /// "remembers" a key) is refused, and every write has passed the load rules and the
    /// lockout guard, as `pr --plan` does.
    /// Returns what was written and the plan as decided again (its errors and warnings are
    /// the run's: the saved file's own are not trusted).
    pub fn replan_and_write(
        &self,
        file: &Path,
        inputs: &Inputs,
        rules: &crate::model::rules::RuleSet,
        now: OffsetDateTime,
    ) -> Result<(Applied, Plan), SavedError> {
        let plan = self.replan(file, inputs, &Tree::Work, rules, now)?;
        let applied = act::write_plan(&plan, inputs)?;
        Ok((applied, plan))
    }

    /// `pr --plan PLAN`: checks the inputs read now (from the tree the pull requests target),
    /// decides again at the saved time, and returns that plan if it is the saved one.
    pub fn replan(
        &self,
        file: &Path,
        inputs: &Inputs,
        tree: &Tree<'_>,
        rules: &crate::model::rules::RuleSet,
        now: OffsetDateTime,
    ) -> Result<Plan, SavedError> {
        let lock = lock_bytes(&inputs.settings, tree, &inputs.lock)?;
        self.check(file, inputs, lock.as_deref())?;
        let as_of = self.as_of_time(&file.display().to_string())?;
        // `as_of` is the file's word: a plan dated later than now would have its grace
        // periods and expiries judged in the future.
        if as_of > now + time::Duration::minutes(5) {
            return Err(SavedError::Future {
                file: file.display().to_string(),
                as_of: self.as_of.clone(),
                now: rfc3339(now),
            });
        }
        let plan = crate::decide::decide(inputs, rules, as_of);
        let again = SavedPlan::new(inputs, &plan, lock.as_deref());
        let differ = |detail: String| SavedError::Decision {
            file: file.display().to_string(),
            detail,
            version: self.keyroll.clone(),
        };
        let files = |p: &SavedPlan| -> Vec<(String, String)> {
            p.files
                .iter()
                .map(|f| (f.path.clone(), f.after_sha256.clone()))
                .collect()
        };
        if files(&again) != files(self) {
            let changed: Vec<String> = files(&again)
                .into_iter()
                .filter(|f| !files(self).contains(f))
                .chain(
                    files(self)
                        .into_iter()
                        .filter(|f| !files(&again).contains(f)),
                )
                .map(|(path, _)| path)
                .collect();
            return Err(differ(format!(
                "the new bytes of {} differ",
                changed.join(", ")
            )));
        }
        if again.lock_after != self.lock_after {
            return Err(differ("keyroll.lock's new text differs".into()));
        }
        // Time passed since the plan was made: the same inputs decided now must still make
        // these changes, or a document that went stale, a key removed before its grace
        // period ends, or a lockout the guard would refuse now would be written.
        // (keyroll.lock's dates differ by the time passed, so its text is not compared; the
        // one written is now's.)
        if now == as_of {
            return Ok(plan);
        }
        judged_now(file, inputs, rules, plan, now)
    }
}

/// A saved plan's decision, applied at `now` after its `as_of`: the same inputs decided now
/// must make the same changes to the files and tables with no new error; then keyroll.lock
/// is now's. A plan dated in the past would otherwise write its own `as_of` as the day a
/// key left the metadata, and the next run would remove the key with its grace period cut
/// short (or never begun).
fn judged_now(
    file: &Path,
    inputs: &Inputs,
    rules: &crate::model::rules::RuleSet,
    mut plan: Plan,
    now: OffsetDateTime,
) -> Result<Plan, SavedError> {
    let current = crate::decide::decide(inputs, rules, now);
    let bytes = |p: &Plan| -> Vec<(String, Vec<u8>)> {
        p.files
            .iter()
            .map(|f| (f.display.clone(), f.after.clone()))
            .collect()
    };
    // keyroll.lock written from now's decision records the rows now's migrations leave.
    let rows = |p: &Plan| -> Vec<(String, String, Vec<String>, Vec<String>)> {
        p.databases
            .iter()
            .map(|d| {
                let (db, issuer) = (d.database.clone(), d.issuer.clone());
                (db, issuer, d.rows_before.clone(), d.rows_after.clone())
            })
            .collect()
    };
    let out_of_date = |detail: String| SavedError::OutOfDate {
        file: file.display().to_string(),
        now: rfc3339(now),
        detail,
    };
    let new_error = current
        .errors
        .iter()
        .map(ToString::to_string)
        .find(|e| !plan.errors.iter().any(|p| p.to_string() == *e));
    if bytes(&current) != bytes(&plan) || current.errors.len() > plan.errors.len() {
        return Err(out_of_date(match new_error {
            Some(error) => format!("an error: {error}"),
            None => "other changes to the files".into(),
        }));
    }
    if rows(&current) != rows(&plan) {
        return Err(out_of_date("other changes to the database tables".into()));
    }
    plan.lock_after = current.lock_after;
    Ok(plan)
}
