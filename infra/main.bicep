// Dynamics–Marketo Sync on Azure: a Flex Consumption function app that runs as a user-assigned
// managed identity, storage with shared keys off, Application Insights with local auth off,
// an optional Key Vault for the client secrets, the operators' workbook and alert rules.
//
// Deploy with `azd up` (azure.yaml) or `az deployment group create` (see README, "Deploy").
// Every app setting the code reads is assembled in `appSettings` below; infra tests check that
// set against shared.settings.setting_names().

targetScope = 'resourceGroup'

// --- where and what ---------------------------------------------------------------------------

@description('Short name of this deployment (the azd environment name): goes into tags and makes resource names unique.')
@minLength(1)
@maxLength(32)
param environmentName string

@description('Azure region; it must offer the Flex Consumption plan.')
param location string = resourceGroup().location

@description('Memory of one function app instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to. The API budgets are shared by every instance through Table Storage, so scaling out never exceeds them.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Storage replication. The tables hold the ID mappings that keep the sync from creating duplicates.')
@allowed([
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_LRS'
  'Standard_ZRS'
])
param storageSkuName string = 'Standard_GRS'

@description('Days Log Analytics keeps telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Create a Key Vault for the client secrets and reference them from app settings. false: the secrets are stored as (encrypted) app settings.')
param keyVaultEnabled bool = true

// --- Dynamics 365 (Dataverse) ---------------------------------------------------------------

@description('The Dataverse environment URL, e.g. https://contoso.crm.dynamics.com.')
param dynamicsUrl string

@description('Entra tenant (GUID or domain) of the Dataverse environment. Empty: the tenant of this deployment.')
param dynamicsTenantId string = ''

@description('Client id of the Dataverse application user. Empty: the app\'s managed identity (register its client id, an output of this deployment, as the application user).')
param dynamicsClientId string = ''

@description('Client secret of that app registration. Empty: sign in with the managed identity (recommended).')
@secure()
param dynamicsClientSecret string = ''

@description('Key Vault secret URI of a certificate for that app registration, instead of a secret (many tenants allow no client secrets for application users): the secret identifier of a Key Vault certificate, e.g. https://<vault>.vault.azure.net/secrets/<certificate-name>, whose value is base64 PKCS12 without a password. The app identity needs Key Vault Secrets User on that vault (granted by this deployment on its own vault). Empty: no certificate.')
param dynamicsCertificateSecretUri string = ''

@description('The app\'s share of the 52 concurrent Dataverse requests per application user: all instances together (1-52).')
@minValue(1)
@maxValue(52)
param dynamicsMaxConcurrency int = 8

@description('The app\'s share of the 6,000 Dataverse requests per 5 minutes per application user: all instances together (1-6000).')
@minValue(1)
@maxValue(6000)
param dynamicsRequestsPer5Min int = 3000

// --- Marketo ----------------------------------------------------------------------------------

@description('Marketo REST base URL without /rest, e.g. https://123-ABC-456.mktorest.com.')
param marketoBaseUrl string

@description('Client id of the Marketo custom service (API user).')
param marketoClientId string

@description('Client secret of the Marketo custom service.')
@secure()
param marketoClientSecret string

@description('This integration\'s share of Marketo\'s 100 calls per 20 seconds: all instances of the app together, counted in Table Storage (1-100).')
@minValue(1)
@maxValue(100)
param marketoCallsPer20s int = 50

@description('This integration\'s share of Marketo\'s 10 concurrent calls: all instances of the app together (1-10).')
@minValue(1)
@maxValue(10)
param marketoMaxConcurrency int = 5

@description('Calls per day this integration may use of the Marketo daily quota: all instances together, counted in Table Storage, reset at midnight US Central.')
@minValue(1)
param marketoDailyCallBudget int = 25000

// --- sync ---------------------------------------------------------------------------------

@description('NCRONTAB schedule of the sync timer, UTC (Flex has no time zone setting).')
param syncSchedule string = '0 */1 * * * *'

@description('Days a resolved or abandoned sync error is kept (1-365).')
@minValue(1)
@maxValue(365)
param syncErrorRetentionDays int = 30

@description('Seconds an open run may show no sign of life (its worker died) before the timer sends it a new job (10-3600). Keep it above Marketo\'s 90 s write timeout.')
@minValue(10)
@maxValue(3600)
param syncRecoverySeconds int = 90

@description('Path (in the deployed app) of a field-mapping file replacing the shipped default. Empty: the default.')
param syncMappingFile string = ''

@description('Id of this integration instance in the state store (letters, digits, ., _ or -).')
@minLength(1)
@maxLength(64)
param syncInstanceId string = 'default'

// --- operators ----------------------------------------------------------------------------

@description('E-mail address that receives the alerts. Empty: the alert rules fire without notifying anyone.')
param alertEmailAddress string = ''

@description('Minutes without progress, while records are waiting, before the "sync stalled" alert fires.')
@allowed([
  15
  30
  45
  60
  120
])
param stalledAfterMinutes int = 30

@description('Percent of the Marketo daily API quota above which the quota alert fires.')
@minValue(1)
@maxValue(100)
param marketoQuotaAlertPercent int = 80

@description('Object id of a person or group operating the sync: reads the queues and tables (dmsync status/errors) and writes requests to them (dmsync errors retry, resync, backfill). azd passes the signed-in user. Empty: none.')
param operatorPrincipalId string = ''

@description('Kind of principal operatorPrincipalId is.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// --- names ------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  application: 'dynamics-marketo-sync'
}
// Must equal the service name in azure.yaml: azd finds the app by this tag.
var serviceName = 'sync'
var appName = 'func-dmsync-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'

// The queues and tables the app uses: the one place infra names them. The job queue is
// shared/jobs.py SYNC_JOBS_QUEUE; the host moves failed jobs to '<queue>-poison' (reference §3).
// The tables are the state store's, with its default prefix 'dmsync'.
var queueNames = [
  'sync-jobs'
  'sync-jobs-poison'
]
var tableNames = [
  'dmsyncwatermarks'
  'dmsyncleases'
  'dmsyncmappings'
  'dmsyncmappingsbymarketo'
  'dmsyncmarketoindex'
  'dmsyncsyncerrors'
  'dmsyncinstances'
  'dmsyncconfig'
  'dmsyncbudgets'
]

// --- resources ----------------------------------------------------------------------------

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-dmsync-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'stdmsync${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    tableNames: tableNames
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-dmsync-${resourceToken}'
    appInsightsName: 'appi-dmsync-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = if (keyVaultEnabled) {
  name: 'keyvault'
  params: {
    name: 'kv-dmsync-${take(resourceToken, 10)}'
    location: location
    tags: tags
    marketoClientSecret: marketoClientSecret
    dynamicsClientSecret: dynamicsClientSecret
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVaultEnabled ? keyVault.outputs.name : ''
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

// --- app settings: everything the code and the platform read --------------------------------

// Dataverse signs in as the managed identity unless a client id and a secret or certificate
// are given.
var dynamicsAuthClientId = empty(dynamicsClientId) ? identity.outputs.clientId : dynamicsClientId
var dynamicsAuthTenantId = empty(dynamicsTenantId) ? tenant().tenantId : dynamicsTenantId
var marketoSecretSetting = keyVaultEnabled ? keyVault.outputs.marketoSecretReference : marketoClientSecret
var dynamicsSecretSetting = keyVaultEnabled ? keyVault.outputs.dynamicsSecretReference : dynamicsClientSecret

var appSettings = union({
  // Host storage and the app's queues and tables, identity-based: no connection string, no
  // account key (reference §6).
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  // OpenTelemetry from the Python worker straight to Application Insights, with an Entra ID
  // token because local auth is off (reference §10; host.json telemetryMode).
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  // Dynamics 365.
  DYNAMICS_URL: dynamicsUrl
  DYNAMICS_TENANT_ID: dynamicsAuthTenantId
  DYNAMICS_CLIENT_ID: dynamicsAuthClientId
  DYNAMICS_MAX_CONCURRENCY: string(dynamicsMaxConcurrency)
  DYNAMICS_REQUESTS_PER_5MIN: string(dynamicsRequestsPer5Min)
  // The Entra authority of this cloud (azure-identity reads it too).
  AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
  // Marketo.
  MARKETO_BASE_URL: marketoBaseUrl
  MARKETO_CLIENT_ID: marketoClientId
  MARKETO_CLIENT_SECRET: marketoSecretSetting
  MARKETO_CALLS_PER_20S: string(marketoCallsPer20s)
  MARKETO_MAX_CONCURRENCY: string(marketoMaxConcurrency)
  MARKETO_DAILY_CALL_BUDGET: string(marketoDailyCallBudget)
  // The sync.
  SYNC_SCHEDULE: syncSchedule
  SYNC_ERROR_RETENTION_DAYS: string(syncErrorRetentionDays)
  SYNC_RECOVERY_SECONDS: string(syncRecoverySeconds)
  SYNC_INSTANCE_ID: syncInstanceId
}, empty(dynamicsClientSecret) ? {} : {
  DYNAMICS_CLIENT_SECRET: dynamicsSecretSetting
}, empty(dynamicsCertificateSecretUri) ? {} : {
  // Resolved by the platform with the app identity; versionless URIs follow a renewal.
  DYNAMICS_CLIENT_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${dynamicsCertificateSecretUri})'
}, empty(syncMappingFile) ? {} : {
  SYNC_MAPPING_FILE: syncMappingFile
})

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: appName
    planName: 'plan-dmsync-${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: appSettings
  }
  // The identity must hold its data roles before the host first starts, or it cannot read
  // its own storage or resolve the Key Vault references.
  dependsOn: [
    rbac
  ]
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    namePrefix: 'dmsync-${resourceToken}'
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmailAddress: alertEmailAddress
    stalledAfterMinutes: stalledAfterMinutes
    marketoQuotaAlertPercent: marketoQuotaAlertPercent
  }
}

// --- outputs (azd stores them in the environment) -------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_SYNC_NAME string = functionApp.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AZURE_KEY_VAULT_NAME string = keyVaultEnabled ? keyVault.outputs.name : ''
// Register this client id as the Dataverse application user (README, "Deploy").
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output WORKBOOK_ID string = workbook.outputs.id
