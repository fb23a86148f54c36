// The registry the template generates (seed 001 quotes it): a key is trusted when its
// thumbprint is a row of IssuingAuthorityKeys and the token's tenant a row of Tenants.
// RefreshKeys runs only at application start (App_Start/IdentityConfig.cs).
using System;
using System.IdentityModel.Tokens;
using System.Linq;
using Contoso.Portal.Models;

namespace Contoso.Portal.Utils
{
    public class DatabaseIssuerNameRegistry : ValidatingIssuerNameRegistry
    {
        public static bool ContainsTenant(string tenantId)
        {
            using (TenantDbContext context = new TenantDbContext())
            {
                return context.Tenants.Where(tenant => tenant.Id == tenantId).Any();
            }
        }

        public static bool ContainsKey(string thumbprint)
        {
            using (TenantDbContext context = new TenantDbContext())
            {
                return context.IssuingAuthorityKeys.Where(key => key.Id == thumbprint).Any();
            }
        }

        public static void RefreshKeys(string metadataLocation)
        {
            IssuingAuthority issuingAuthority = ValidatingIssuerNameRegistry.GetIssuingAuthority(metadataLocation);
            bool newKeys = issuingAuthority.Thumbprints.Any(thumbprint => !ContainsKey(thumbprint));
            bool refreshTenant = newKeys || issuingAuthority.Issuers.Any(issuer => !ContainsTenant(GetIssuerId(issuer)));
            if (!newKeys && !refreshTenant)
            {
                return;
            }
            using (TenantDbContext context = new TenantDbContext())
            {
                if (newKeys)
                {
                    context.IssuingAuthorityKeys.RemoveRange(context.IssuingAuthorityKeys);
                    foreach (string thumbprint in issuingAuthority.Thumbprints)
                    {
                        context.IssuingAuthorityKeys.Add(new IssuingAuthorityKey { Id = thumbprint });
                    }
                }
                foreach (string issuer in issuingAuthority.Issuers)
                {
                    string tenantId = GetIssuerId(issuer);
                    if (!ContainsTenant(tenantId))
                    {
                        context.Tenants.Add(new Tenant { Id = tenantId });
                    }
                }
                context.SaveChanges();
            }
        }

        private static string GetIssuerId(string issuer)
        {
            return issuer.TrimEnd('/').Split('/').Last();
        }

        protected override bool IsThumbprintValid(string thumbprint, string issuer)
        {
            return ContainsTenant(GetIssuerId(issuer)) && ContainsKey(thumbprint);
        }
    }
}
