// The user-assigned managed identity the function app runs as. One identity is used for the
// host storage, the app's queues and tables, Application Insights ingestion, Key Vault
// references and (by default) Dataverse, so an operator grants access to exactly one principal.

@description('Identity name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
