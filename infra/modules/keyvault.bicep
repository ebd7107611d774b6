// Optional Key Vault for the Marketo and Dynamics client secrets. The function app reads them
// through Key Vault references resolved with its user-assigned identity, so the secret values
// never appear in the app's configuration.

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Marketo custom service client secret.')
@secure()
param marketoClientSecret string

@description('Dynamics app registration client secret; empty when the managed identity signs in to Dataverse.')
@secure()
param dynamicsClientSecret string = ''

// Secret names, used in the Key Vault references built by main.bicep.
var marketoSecretName = 'marketo-client-secret'
var dynamicsSecretName = 'dynamics-client-secret'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Key Vault references are resolved by the Functions platform over the public endpoint when the app has no VNet integration; access is RBAC-only (Key Vault Secrets User for the app identity).
  // checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: public network access is needed for Key Vault references without a VNet; data-plane access is RBAC-only.
  // checkov:skip=CKV_AZURE_110:The vault holds copies of credentials issued by Marketo and Entra ID (no encryption keys), and purge protection would block redeploying the same environment name for 90 days after `azd down`. Soft delete (90 days) still allows recovery.
  // checkov:skip=CKV_AZURE_42:'Recoverable' means soft delete plus purge protection; soft delete is on, purge protection is off for the reason given for CKV_AZURE_110.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module marketoSecret 'keyvault-secret.bicep' = {
  name: 'secret-marketo'
  params: {
    vaultName: vault.name
    secretName: marketoSecretName
    value: marketoClientSecret
  }
}

module dynamicsSecret 'keyvault-secret.bicep' = if (!empty(dynamicsClientSecret)) {
  name: 'secret-dynamics'
  params: {
    vaultName: vault.name
    secretName: dynamicsSecretName
    value: dynamicsClientSecret
  }
}

output id string = vault.id
output name string = vault.name
// Versionless references: the app picks up a rotated secret without a redeploy.
output marketoSecretReference string = '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${marketoSecretName})'
output dynamicsSecretReference string = empty(dynamicsClientSecret) ? '' : '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${dynamicsSecretName})'
