// The Flex Consumption plan (FC1) and the function app: Linux, Python, deployed from a blob
// container with the user-assigned identity (reference §7). The runtime lives in
// functionAppConfig, not in app settings: Flex refuses FUNCTIONS_WORKER_RUNTIME and the other
// settings listed in reference §5.

@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region (one that offers Flex Consumption).')
param location string

@description('Tags for every resource.')
param tags object

@description('The azd service name this app deploys (tag azd-service-name).')
param serviceName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('URL of the blob container the app package is deployed to.')
param deploymentContainerUrl string

@description('Python version of the Functions worker.')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Memory of one instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the platform scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('Every app setting, already assembled by main.bicep.')
@secure()
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption is offered only in some regions and is a per-deployment choice; the sync's state lives in (geo-redundant) storage, so an instance loss only delays work.
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_16:The app exposes no HTTP endpoints users call (timer and queue triggers only), so App Service Authentication has nothing to protect.
  // checkov:skip=CKV_AZURE_17:No HTTP triggers: client certificates have no caller to authenticate.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per function; there is no fixed instance count to raise for failover.
  // checkov:skip=CKV_AZURE_213:No HTTP endpoint exists to health-check; the platform restarts failed hosts and queue messages are redelivered.
  // checkov:skip=CKV_AZURE_222:Deployments (azd deploy, zip deploy) reach the app's SCM endpoint over the public network when the app has no VNet; with no HTTP triggers the public surface is the deployment endpoint only, protected by Entra ID (basic publishing credentials are off below).
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Key Vault references are resolved with the app's user-assigned identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// appsettings replaces the whole set: what main.bicep assembles is exactly what the app gets.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:This is the 'appsettings' config (environment variables), not 'web'/'authsettings'; the app has no HTTP endpoints that authentication would protect.
  // checkov:skip=CKV_AZURE_63:Reads siteConfig.httpLoggingEnabled, which the 'appsettings' config has not; there is no HTTP traffic to log, and the app's telemetry goes to Application Insights.
  // checkov:skip=CKV_AZURE_65:Reads siteConfig.detailedErrorLoggingEnabled (an IIS/App Service web feature); not on 'appsettings' and no HTTP endpoints exist.
  // checkov:skip=CKV_AZURE_66:Reads siteConfig.requestTracingEnabled (an HTTP feature); not on 'appsettings' and no HTTP endpoints exist.
  // checkov:skip=CKV_AZURE_80:.NET Framework version; this is a Python app whose runtime is set in functionAppConfig.runtime.
  // checkov:skip=CKV_AZURE_88:Flex Consumption uses no Azure Files content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING is refused on Flex, reference §5); the package comes from a blob container.
  // checkov:skip=CKV_AZURE_222:Public network access is a site property (see the skip on the site); 'appsettings' holds environment variables only.
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No FTP or basic-auth SCM publishing: deployments authenticate with Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
