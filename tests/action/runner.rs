//! A simulated GitHub Actions runner for a composite action: it reads `action.yml` itself
//! (not the scripts it calls), so a file GitHub could not load, an expression naming an input
//! that does not exist, or an output wired to the wrong step fails the test that runs it.
//!
//! What it does, as the real runner does for a composite action:
//! - inputs: the given values, else the declared `default` (itself evaluated: `${{ github.token }}`);
//!   giving an undeclared input is an error;
//! - per step, in order: evaluates the `${{ … }}` expressions in `env`, `working-directory`
//!   and `run`, writes `run` to a script and starts it with the declared `shell`
//!   (`bash --noprofile --norc -eo pipefail FILE`), in a fresh environment holding the runner's
//!   variables, the job's environment and the step's `env`;
//! - fresh command files per step (`GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`,
//!   `GITHUB_STEP_SUMMARY`), read after it in GitHub's `name=value` / `name<<DELIMITER`
//!   format (a malformed line fails the step); `GITHUB_PATH` entries are put in front of
//!   `PATH`, and `GITHUB_ENV` entries set, for the later steps;
//! - a step that exits non-zero fails the action: the later steps do not run;
//! - then the action's `outputs` are evaluated from the steps' outputs.
//!
//! A workflow job's steps run the same way ([`Runner::run_job`], for tests/org_workflow.rs):
//! `run:` steps as above (the default shell, `bash -e FILE`, unless `shell: bash`), with the
//! job's `matrix`, `runner` and `secrets` contexts too, `if: always()` honoured; `uses:`
//! steps go to the caller's stand-ins, which return the step's outputs.
//!
//! Expressions: `inputs.NAME`, `github.NAME`, `steps.ID.outputs.NAME` only. Anything else
//! (another context, an operator, a function, an unknown input or step id) is an error, never
//! an empty string. A known step's output that was not set is empty, as on GitHub. Keys the
//! runner does not implement (`uses`, `if`, `with`, `continue-on-error`, …) fail the parse.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub branding: Option<Branding>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Input>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Output>,
    pub runs: Runs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub icon: String,
    pub color: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub description: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runs {
    pub using: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub shell: String,
    pub run: String,
    #[serde(default, rename = "working-directory")]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A workflow job's step (the keys the simulation implements; any other fails the parse).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStep {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub uses: Option<String>,
    #[serde(default)]
    pub with: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default, rename = "working-directory")]
    pub working_directory: Option<String>,
}

/// A `uses:` step as a stand-in sees it: the action and its evaluated `with:`.
pub struct StandIn<'a> {
    pub uses: &'a str,
    pub with: BTreeMap<String, String>,
    /// The job's runner (its workspace and temp folder).
    pub runner: &'a Runner,
}

/// What runs a `uses:` step: its outputs, or the message of its failure.
pub type StandInFn<'a> = dyn FnMut(&StandIn) -> Result<BTreeMap<String, String>, String> + 'a;

/// A YAML scalar as the runner reads it into a string (`true`, `0`, text).
fn scalar(value: &serde_yaml_ng::Value) -> Result<String, String> {
    match value {
        serde_yaml_ng::Value::String(s) => Ok(s.clone()),
        serde_yaml_ng::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("not a scalar: {other:?}")),
    }
}

impl ActionFile {
    pub fn parse(text: &str) -> Result<ActionFile, String> {
        let action: ActionFile =
            serde_yaml_ng::from_str(text).map_err(|e| format!("action.yml: {e}"))?;
        if action.runs.using != "composite" {
            return Err(format!(
                "action.yml: runs.using is {:?}; this runner runs composite actions",
                action.runs.using
            ));
        }
        let mut ids = BTreeSet::new();
        for step in &action.runs.steps {
            if let Some(id) = &step.id
                && !ids.insert(id.clone())
            {
                return Err(format!("action.yml: two steps have the id {id:?}"));
            }
        }
        Ok(action)
    }

    pub fn load(path: &Path) -> Result<ActionFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ActionFile::parse(&text)
    }
}

/// What an expression can see.
struct Contexts<'a> {
    inputs: Option<&'a BTreeMap<String, String>>,
    github: &'a BTreeMap<String, String>,
    steps: Option<&'a BTreeMap<String, BTreeMap<String, String>>>,
    step_ids: &'a BTreeSet<String>,
    /// A workflow job's other contexts (`matrix`, `runner`, `secrets`), read as
    /// `CONTEXT.NAME`; empty for a composite action, which sees none of them.
    job: &'a BTreeMap<String, BTreeMap<String, String>>,
}

static NO_JOB_CONTEXTS: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn resolve(expression: &str, contexts: &Contexts) -> Result<String, String> {
    let parts: Vec<&str> = expression.split('.').collect();
    if !parts.iter().all(|p| is_name(p)) {
        return Err(format!("unsupported expression `{expression}`"));
    }
    match parts.as_slice() {
        ["inputs", name] => {
            let inputs = contexts
                .inputs
                .ok_or_else(|| format!("`{expression}`: no inputs context here"))?;
            inputs
                .get(*name)
                .cloned()
                .ok_or_else(|| format!("`{expression}`: action.yml declares no input {name:?}"))
        }
        ["github", name] => {
            contexts.github.get(*name).cloned().ok_or_else(|| {
                format!("`{expression}`: the simulated github context has no {name}")
            })
        }
        [context, name] if contexts.job.contains_key(*context) => contexts.job[*context]
            .get(*name)
            .cloned()
            .ok_or_else(|| format!("`{expression}`: the {context} context has no {name}")),
        ["steps", id, "outputs", name] => {
            if !contexts.step_ids.contains(*id) {
                return Err(format!("`{expression}`: no step has the id {id:?}"));
            }
            let steps = contexts
                .steps
                .ok_or_else(|| format!("`{expression}`: no steps context here"))?;
            Ok(steps
                .get(*id)
                .and_then(|outputs| outputs.get(*name))
                .cloned()
                .unwrap_or_default())
        }
        _ => Err(format!("unsupported expression `{expression}`")),
    }
}

/// Replaces every `${{ … }}` in `template`.
fn evaluate(template: &str, contexts: &Contexts) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unterminated expression in {template:?}"))?;
        out.push_str(&resolve(after[..end].trim(), contexts)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a command file (`GITHUB_OUTPUT`, `GITHUB_ENV`) as the runner does:
/// `name=value` lines and `name<<DELIMITER` … `DELIMITER` blocks.
pub fn parse_command_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(h), e) if e.is_none_or(|e| h < e) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("invalid command file line {line:?}"));
                }
                let mut value = Vec::new();
                loop {
                    let next = lines
                        .next()
                        .ok_or_else(|| format!("{name}: no closing delimiter {delimiter:?}"))?;
                    let next = next.strip_suffix('\r').unwrap_or(next);
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                pairs.push((name.to_string(), value.join("\n")));
            }
            (_, Some(e)) => {
                let name = &line[..e];
                if name.is_empty() {
                    return Err(format!("invalid command file line {line:?}"));
                }
                pairs.push((name.to_string(), line[e + 1..].to_string()));
            }
            _ => return Err(format!("invalid command file line {line:?}")),
        }
    }
    Ok(pairs)
}

/// One step as it ran (or did not).
#[derive(Debug, Clone, Default)]
pub struct StepRun {
    pub name: String,
    pub id: Option<String>,
    pub ran: bool,
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The `env` the step got, after evaluation.
    pub env: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    /// The raw text of its command files, by variable name (`GITHUB_OUTPUT`, …).
    pub command_files: BTreeMap<String, String>,
    /// A malformed command file.
    pub runner_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ActionRun {
    pub steps: Vec<StepRun>,
    pub outputs: BTreeMap<String, String>,
    /// Every step's `GITHUB_STEP_SUMMARY`, in order.
    pub summary: String,
    /// `GITHUB_PATH` entries, in the order added.
    pub path: Vec<String>,
    /// Values the steps registered with `::add-mask::`.
    pub masks: Vec<String>,
}

impl ActionRun {
    pub fn success(&self) -> bool {
        self.steps.iter().all(|s| s.ran && s.success)
    }

    pub fn step(&self, id: &str) -> &StepRun {
        self.steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no step with id {id}"))
    }

    /// The job log: each step's name, stdout and stderr.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            out.push_str(&format!(
                "=== {} (ran: {}, exit {:?})\n{}{}",
                step.name, step.ran, step.code, step.stdout, step.stderr
            ));
            if let Some(e) = &step.runner_error {
                out.push_str(&format!("runner: {e}\n"));
            }
        }
        out
    }

    /// Everything the action wrote that a person or a later step can read: the log, every
    /// command file, the summary and the outputs.
    pub fn everything(&self) -> String {
        let mut out = self.log();
        for step in &self.steps {
            for (name, text) in &step.command_files {
                out.push_str(&format!("--- {name} of {}\n{text}", step.name));
            }
        }
        out.push_str(&self.summary);
        for (name, value) in &self.outputs {
            out.push_str(&format!("{name}={value}\n"));
        }
        out
    }
}

/// The simulated runner: where things are, the `github` context and the job's environment.
pub struct Runner {
    /// `GITHUB_ACTION_PATH`: the folder holding action.yml.
    pub action_dir: PathBuf,
    pub workspace: PathBuf,
    /// `RUNNER_TEMP`.
    pub temp: PathBuf,
    pub os: String,
    pub arch: String,
    pub github: BTreeMap<String, String>,
    /// The job's environment (a workflow's `env:`), seen by every step.
    pub job_env: BTreeMap<String, String>,
}

impl Runner {
    /// A Linux X64 runner over `workspace`, with its temp folder in `temp`.
    pub fn new(action_dir: &Path, workspace: &Path, temp: &Path) -> Runner {
        std::fs::create_dir_all(temp).unwrap();
        let github = [
            ("workspace", workspace.display().to_string()),
            ("token", "ghs_default_github_token_0123456789".to_string()),
            ("action_repository", "keyroll/keyroll".to_string()),
            ("repository", "contoso/identity-configs".to_string()),
            ("server_url", "https://github.com".to_string()),
            ("api_url", "https://api.github.com".to_string()),
            ("event_name", "schedule".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Runner {
            action_dir: action_dir.to_path_buf(),
            workspace: workspace.to_path_buf(),
            temp: temp.to_path_buf(),
            os: "Linux".into(),
            arch: "X64".into(),
            github,
            job_env: BTreeMap::new(),
        }
    }

    /// The variables the runner itself sets for every step.
    fn runner_env(&self) -> BTreeMap<String, String> {
        let g = |k: &str| self.github.get(k).cloned().unwrap_or_default();
        [
            ("CI", "true".to_string()),
            ("GITHUB_ACTIONS", "true".to_string()),
            ("GITHUB_ACTION_PATH", self.action_dir.display().to_string()),
            ("GITHUB_ACTION_REPOSITORY", g("action_repository")),
            ("GITHUB_WORKSPACE", self.workspace.display().to_string()),
            ("GITHUB_REPOSITORY", g("repository")),
            ("GITHUB_SERVER_URL", g("server_url")),
            ("GITHUB_API_URL", g("api_url")),
            ("GITHUB_EVENT_NAME", g("event_name")),
            ("RUNNER_OS", self.os.clone()),
            ("RUNNER_ARCH", self.arch.clone()),
            ("RUNNER_TEMP", self.temp.display().to_string()),
            (
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            ),
            ("LANG", "C.UTF-8".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs the action in `action_dir/action.yml` with `inputs`. Err for what GitHub would
    /// refuse or this runner cannot do (see the module doc); a failing step is not an Err.
    pub fn try_run(&self, inputs: &[(&str, &str)]) -> Result<ActionRun, String> {
        let action = ActionFile::load(&self.action_dir.join("action.yml"))?;
        self.run_action(&action, inputs)
    }

    pub fn run(&self, inputs: &[(&str, &str)]) -> ActionRun {
        self.try_run(inputs)
            .unwrap_or_else(|e| panic!("the runner refused the action: {e}"))
    }

    pub fn run_action(
        &self,
        action: &ActionFile,
        given: &[(&str, &str)],
    ) -> Result<ActionRun, String> {
        let step_ids: BTreeSet<String> = action
            .runs
            .steps
            .iter()
            .filter_map(|s| s.id.clone())
            .collect();
        let no_inputs = Contexts {
            inputs: None,
            github: &self.github,
            steps: None,
            step_ids: &step_ids,
            job: &NO_JOB_CONTEXTS,
        };
        let mut inputs = BTreeMap::new();
        for (name, value) in given {
            if !action.inputs.contains_key(*name) {
                return Err(format!("input {name:?} is not declared in action.yml"));
            }
            inputs.insert(name.to_string(), value.to_string());
        }
        for (name, input) in &action.inputs {
            if inputs.contains_key(name) {
                continue;
            }
            if input.required && input.default.is_none() {
                return Err(format!("required input {name:?} not given"));
            }
            let default = input.default.as_deref().unwrap_or("");
            inputs.insert(
                name.clone(),
                evaluate(default, &no_inputs).map_err(|e| format!("input {name}: {e}"))?,
            );
        }

        let files = self.temp.join("_runner_file_commands");
        std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
        let base_path = std::env::var("PATH").unwrap_or_default();
        let mut run = ActionRun::default();
        let mut step_outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut added_env: BTreeMap<String, String> = BTreeMap::new();
        let mut failed = false;
        for (index, step) in action.runs.steps.iter().enumerate() {
            let mut record = StepRun {
                name: step.name.clone().unwrap_or_else(|| format!("step {index}")),
                id: step.id.clone(),
                ..Default::default()
            };
            if failed {
                run.steps.push(record);
                continue;
            }
            let contexts = Contexts {
                inputs: Some(&inputs),
                github: &self.github,
                steps: Some(&step_outputs),
                step_ids: &step_ids,
                job: &NO_JOB_CONTEXTS,
            };
            let step_name = record.name.clone();
            let at = |what: &str, e: String| format!("step {step_name:?}, {what}: {e}");
            let mut step_env = BTreeMap::new();
            for (key, value) in &step.env {
                step_env.insert(
                    key.clone(),
                    evaluate(value, &contexts).map_err(|e| at(&format!("env.{key}"), e))?,
                );
            }
            let script = evaluate(&step.run, &contexts).map_err(|e| at("run", e))?;
            let cwd = match &step.working_directory {
                Some(dir) => {
                    PathBuf::from(evaluate(dir, &contexts).map_err(|e| at("working-directory", e))?)
                }
                None => self.workspace.clone(),
            };
            if step.shell != "bash" {
                return Err(at("shell", format!("{:?} is not simulated", step.shell)));
            }

            self.exec(
                &files,
                index,
                &script,
                &cwd,
                &["--noprofile", "--norc", "-eo", "pipefail"],
                step_env,
                &base_path,
                &mut added_env,
                &mut run,
                &mut record,
            )
            .map_err(|e| format!("step {:?}, start: {e}", step_name))?;
            if let Some(id) = &step.id {
                step_outputs.insert(id.clone(), record.outputs.clone());
            }
            failed = !record.success;
            run.steps.push(record);
        }

        let contexts = Contexts {
            inputs: Some(&inputs),
            github: &self.github,
            steps: Some(&step_outputs),
            step_ids: &step_ids,
            job: &NO_JOB_CONTEXTS,
        };
        for (name, output) in &action.outputs {
            run.outputs.insert(
                name.clone(),
                evaluate(&output.value, &contexts).map_err(|e| format!("output {name}: {e}"))?,
            );
        }
        Ok(run)
    }

    /// Runs one `run:` step's script with bash (`shell_args` before the script's path) in a
    /// fresh environment, and reads its command files into `record` and `run`.
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        files: &Path,
        index: usize,
        script: &str,
        cwd: &Path,
        shell_args: &[&str],
        step_env: BTreeMap<String, String>,
        base_path: &str,
        added_env: &mut BTreeMap<String, String>,
        run: &mut ActionRun,
        record: &mut StepRun,
    ) -> Result<(), String> {
        let command_files: Vec<(&str, PathBuf)> = [
            ("GITHUB_OUTPUT", "set_output"),
            ("GITHUB_ENV", "set_env"),
            ("GITHUB_PATH", "add_path"),
            ("GITHUB_STEP_SUMMARY", "step_summary"),
        ]
        .into_iter()
        .map(|(var, stem)| (var, files.join(format!("{stem}_{index}"))))
        .collect();
        for (_, file) in &command_files {
            std::fs::write(file, "").map_err(|e| e.to_string())?;
        }
        let script_file = self.temp.join(format!("step_{index}.sh"));
        std::fs::write(&script_file, script).map_err(|e| e.to_string())?;

        let mut path = run.path.iter().rev().cloned().collect::<Vec<_>>();
        path.push(base_path.to_string());
        let mut command = Command::new("bash");
        command
            .args(shell_args)
            .arg(&script_file)
            .current_dir(cwd)
            .env_clear()
            .envs(self.runner_env())
            .env("PATH", path.join(":"))
            .envs(&self.job_env)
            .envs(&*added_env)
            .envs(&step_env);
        for (var, file) in &command_files {
            command.env(var, file);
        }
        let output = command.output().map_err(|e| format!("bash: {e}"))?;
        record.ran = true;
        record.code = output.status.code();
        record.success = output.status.success();
        record.stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        record.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        record.env = step_env;
        for line in record.stdout.lines() {
            if let Some(value) = line.strip_prefix("::add-mask::") {
                run.masks.push(value.to_string());
            }
        }

        for (var, file) in &command_files {
            let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
            record.command_files.insert(var.to_string(), text.clone());
            let parsed = match *var {
                "GITHUB_OUTPUT" | "GITHUB_ENV" => parse_command_file(&text),
                _ => Ok(Vec::new()),
            };
            let pairs = match parsed {
                Ok(pairs) => pairs,
                Err(e) => {
                    record.runner_error = Some(format!("{var}: {e}"));
                    record.success = false;
                    continue;
                }
            };
            match *var {
                "GITHUB_OUTPUT" => record.outputs.extend(pairs),
                "GITHUB_ENV" => added_env.extend(pairs),
                "GITHUB_PATH" => run.path.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                ),
                _ => run.summary.push_str(&text),
            }
        }
        Ok(())
    }

    /// Runs a workflow job's steps, in order, for one matrix entry: `inputs` (the workflow's
    /// inputs), `job` (the `matrix`, `secrets` contexts; `runner.temp` is added). A step
    /// runs when every earlier one succeeded, or when its `if:` is `always()`; any other
    /// `if:` is refused. `uses:` steps go to `stand_in`: `Ok(outputs)`, or `Err(message)` for
    /// a step that failed. Err for what this runner cannot simulate.
    pub fn run_job(
        &self,
        steps: &[WorkflowStep],
        inputs: &BTreeMap<String, String>,
        job: &BTreeMap<String, BTreeMap<String, String>>,
        stand_in: &mut StandInFn<'_>,
    ) -> Result<ActionRun, String> {
        let mut job = job.clone();
        job.entry("runner".into())
            .or_default()
            .insert("temp".into(), self.temp.display().to_string());
        let step_ids: BTreeSet<String> = steps.iter().filter_map(|s| s.id.clone()).collect();
        if step_ids.len() != steps.iter().filter(|s| s.id.is_some()).count() {
            return Err("two steps have the same id".into());
        }
        let files = self.temp.join("_runner_file_commands");
        std::fs::create_dir_all(&files).map_err(|e| e.to_string())?;
        let base_path = std::env::var("PATH").unwrap_or_default();
        let mut run = ActionRun::default();
        let mut step_outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut added_env: BTreeMap<String, String> = BTreeMap::new();
        let mut failed = false;
        for (index, step) in steps.iter().enumerate() {
            let name = step
                .name
                .clone()
                .or_else(|| step.uses.clone())
                .unwrap_or_else(|| format!("step {index}"));
            let mut record = StepRun {
                name: name.clone(),
                id: step.id.clone(),
                ..Default::default()
            };
            let at = |what: &str, e: String| format!("step {name:?}, {what}: {e}");
            let always = match step.condition.as_deref().map(str::trim) {
                None => false,
                Some("always()") => true,
                Some(other) => return Err(at("if", format!("`{other}` is not simulated"))),
            };
            if failed && !always {
                run.steps.push(record);
                continue;
            }
            let contexts = Contexts {
                inputs: Some(inputs),
                github: &self.github,
                steps: Some(&step_outputs),
                step_ids: &step_ids,
                job: &job,
            };
            let mut step_env = BTreeMap::new();
            for (key, value) in &step.env {
                let value = scalar(value).map_err(|e| at(&format!("env.{key}"), e))?;
                step_env.insert(
                    key.clone(),
                    evaluate(&value, &contexts).map_err(|e| at(&format!("env.{key}"), e))?,
                );
            }
            match (&step.uses, &step.run) {
                (Some(uses), None) => {
                    if step.shell.is_some()
                        || step.working_directory.is_some()
                        || !step.env.is_empty()
                    {
                        return Err(at(
                            "uses",
                            "shell, working-directory and env are not simulated on a uses: step"
                                .into(),
                        ));
                    }
                    let mut with = BTreeMap::new();
                    for (key, value) in &step.with {
                        let value = scalar(value).map_err(|e| at(&format!("with.{key}"), e))?;
                        with.insert(
                            key.clone(),
                            evaluate(&value, &contexts)
                                .map_err(|e| at(&format!("with.{key}"), e))?,
                        );
                    }
                    record.ran = true;
                    match stand_in(&StandIn {
                        uses,
                        with,
                        runner: self,
                    }) {
                        Ok(outputs) => {
                            record.success = true;
                            record.code = Some(0);
                            record.outputs = outputs;
                        }
                        Err(message) => {
                            record.code = Some(1);
                            record.stderr = message;
                        }
                    }
                }
                (None, Some(script)) => {
                    if !step.with.is_empty() {
                        return Err(at("with", "with: on a run: step".into()));
                    }
                    let script = evaluate(script, &contexts).map_err(|e| at("run", e))?;
                    let cwd = match &step.working_directory {
                        Some(dir) => PathBuf::from(
                            evaluate(dir, &contexts).map_err(|e| at("working-directory", e))?,
                        ),
                        None => self.workspace.clone(),
                    };
                    // GitHub's default shell on Linux is `bash -e {0}`; `shell: bash` adds
                    // --noprofile --norc and pipefail.
                    let shell_args: &[&str] = match step.shell.as_deref() {
                        None => &["-e"],
                        Some("bash") => &["--noprofile", "--norc", "-eo", "pipefail"],
                        Some(other) => {
                            return Err(at("shell", format!("{other:?} is not simulated")));
                        }
                    };
                    self.exec(
                        &files,
                        index,
                        &script,
                        &cwd,
                        shell_args,
                        step_env,
                        &base_path,
                        &mut added_env,
                        &mut run,
                        &mut record,
                    )
                    .map_err(|e| at("start", e))?;
                }
                _ => return Err(at("step", "needs exactly one of uses: and run:".into())),
            }
            if let Some(id) = &step.id {
                step_outputs.insert(id.clone(), record.outputs.clone());
            }
            failed |= !record.success;
            run.steps.push(record);
        }
        Ok(run)
    }
}
