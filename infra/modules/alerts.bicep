// Log search alert rules on the Application Insights component. Each rule's query is a file in
// infra/queries; a rule fires when its query returns any row. Thresholds are `let` lines at the
// top of those files; the values here replace them (infra tests check each replacement hits).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Prefix for the rule names.')
param namePrefix string

@description('Application Insights component the rules query.')
param appInsightsId string

@description('Optional e-mail address that receives the alerts. Empty: rules fire without notifying anyone (they still show in Azure Monitor).')
param alertEmailAddress string = ''

@description('Minutes without progress, while records are waiting, before "sync stalled" fires.')
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

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'dmsync-ops'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmailAddress) ? [] : array(actionGroup.id)

var stalledQuery = replace(loadTextContent('../queries/alert-sync-stalled.kql'), 'let stallWindow = 30m;', 'let stallWindow = ${stalledAfterMinutes}m;')

var quotaQuery = replace(loadTextContent('../queries/alert-marketo-quota.kql'), 'let quotaPercentThreshold = 80;', 'let quotaPercentThreshold = ${marketoQuotaAlertPercent};')

resource poisonMessages 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-poison-messages'
  location: location
  tags: tags
  properties: {
    displayName: 'Dynamics–Marketo Sync: jobs in the poison queue'
    description: 'A sync job failed maxDequeueCount times and was moved to sync-jobs-poison. Inspect it (dmsync errors, the exceptions table), fix the cause, then re-queue or delete it.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-poison-messages.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource syncStalled 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-sync-stalled'
  location: location
  tags: tags
  properties: {
    displayName: 'Dynamics–Marketo Sync: sync stalled'
    description: 'Records are waiting but none moved for ${stalledAfterMinutes} minutes. Check the workbook (status, errors by code), the function app\'s invocations, and API throttling.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    // The query looks back 6 hours for the latest backlog report, so the window must too.
    windowSize: 'PT6H'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: stalledQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'instance'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'entity'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'direction'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource marketoQuota 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-marketo-quota'
  location: location
  tags: tags
  properties: {
    displayName: 'Dynamics–Marketo Sync: Marketo daily quota above ${marketoQuotaAlertPercent}%'
    description: 'The Marketo daily API quota (shared with every integration on the instance) is nearly used up, or Marketo answered 607. Lower MARKETO_DAILY_CALL_BUDGET or find the other consumer.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: quotaQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'instance'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource instanceSuspended 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-instance-suspended'
  location: location
  tags: tags
  properties: {
    displayName: 'Dynamics–Marketo Sync: instance suspended'
    description: 'A sync instance stopped itself (for example its Dynamics environment was copied or refreshed). It moves no data until an operator resolves the reason shown.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-instance-suspended.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'instance'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

output ruleIds array = [
  poisonMessages.id
  syncStalled.id
  marketoQuota.id
  instanceSuspended.id
]
