// One secret in an existing Key Vault (a module, so the caller can create it conditionally).

@description('Name of the Key Vault.')
param vaultName string

@description('Name of the secret.')
param secretName string

@description('Value of the secret.')
@secure()
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:An expiry on this copy does not expire the credential it holds (issued by Marketo or Entra ID); it would only make the Key Vault reference fail and stop the sync. Rotate at the issuer and update the secret here.
  parent: vault
  name: secretName
  properties: {
    value: value
    contentType: 'text/plain'
  }
}

output name string = secret.name
