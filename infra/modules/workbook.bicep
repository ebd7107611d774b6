// The operators' workbook: what Marketo's Sync Status tab shows (status, pending records, last
// sync per entity) and more. Every query is a file in infra/queries, loaded at build time, so
// the workbook, the README and the syntax check all read the same text.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Application Insights component the queries read.')
param appInsightsId string

@description('Title shown in the portal.')
param displayName string = 'Dynamics–Marketo Sync: operations'

var components = 'microsoft.insights/components'

// Workbook item types: 1 = markdown text, 3 = query (version KqlItem/1.0).
var items = [
  {
    type: 1
    name: 'intro'
    content: {
      json: '## Dynamics–Marketo Sync\nOne row per stream (sync instance, entity, direction). *Pending* is the backlog the sync last reported; *Stalled* means records are waiting but none moved in 30 minutes. Metrics arrive about once a minute.'
    }
  }
  {
    type: 3
    name: 'sync-status'
    content: {
      version: 'KqlItem/1.0'
      title: 'Sync status per stream'
      query: loadTextContent('../queries/sync-status.kql')
      queryType: 0
      resourceType: components
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'catch-up-estimate'
    content: {
      version: 'KqlItem/1.0'
      title: 'Estimated catch-up time'
      query: loadTextContent('../queries/catch-up-estimate.kql')
      queryType: 0
      resourceType: components
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'backlog-per-entity'
    content: {
      version: 'KqlItem/1.0'
      title: 'Backlog per stream, last 24 hours'
      query: loadTextContent('../queries/backlog-per-entity.kql')
      queryType: 0
      resourceType: components
      visualization: 'timechart'
      size: 0
    }
  }
  {
    type: 3
    name: 'records-per-hour'
    content: {
      version: 'KqlItem/1.0'
      title: 'Records synced per hour, last 24 hours'
      query: loadTextContent('../queries/records-per-hour.kql')
      queryType: 0
      resourceType: components
      visualization: 'barchart'
      size: 0
    }
  }
  {
    type: 3
    name: 'errors-by-code'
    content: {
      version: 'KqlItem/1.0'
      title: 'Errors by code, last 24 hours'
      query: loadTextContent('../queries/errors-by-code.kql')
      queryType: 0
      resourceType: components
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'api-usage'
    content: {
      version: 'KqlItem/1.0'
      title: 'API calls and throttles per hour'
      query: loadTextContent('../queries/api-usage.kql')
      queryType: 0
      resourceType: components
      visualization: 'timechart'
      size: 0
    }
  }
  {
    type: 3
    name: 'marketo-quota'
    content: {
      version: 'KqlItem/1.0'
      title: 'Marketo daily API quota used'
      query: loadTextContent('../queries/marketo-quota.kql')
      queryType: 0
      resourceType: components
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'shared-budget'
    content: {
      version: 'KqlItem/1.0'
      title: 'Shared API budgets: calls in the window and in flight, all instances'
      query: loadTextContent('../queries/shared-budget.kql')
      queryType: 0
      resourceType: components
      visualization: 'timechart'
      size: 0
    }
  }
  {
    type: 3
    name: 'initial-sync-progress'
    content: {
      version: 'KqlItem/1.0'
      title: 'Initial sync progress'
      query: loadTextContent('../queries/initial-sync-progress.kql')
      queryType: 0
      resourceType: components
      visualization: 'table'
      size: 0
    }
  }
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names must be GUIDs; this one is stable per resource group and component.
  name: guid(resourceGroup().id, appInsightsId, 'dmsync-operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string({
      version: 'Notebook/1.0'
      items: items
      isLocked: false
      fallbackResourceIds: [
        appInsightsId
      ]
    })
  }
}

output id string = workbook.id
