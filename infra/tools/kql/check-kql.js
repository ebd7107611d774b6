#!/usr/bin/env node
// Parses and semantically analyses KQL files with Microsoft's Kusto language service
// (@kusto/language-service-next, the Kusto.Language parser compiled to JavaScript) against the
// Application Insights tables the queries read (the component-scoped "classic" schema that
// workbooks and log alert rules on an Application Insights resource see).
//
// Usage: node check-kql.js FILE.kql...
// Prints one JSON object: {"files": {"<path>": {"diagnostics": [{"severity", "code", "message",
// "line"}...], "columns": [{"name", "type"}...]}}}; "columns" is the result schema the analyser
// infers (what a workbook shows, and what an alert rule can split by).
// Exit status: 0 when no file has an error-severity diagnostic, 1 otherwise, 2 on bad usage.
"use strict";

const fs = require("fs");
const path = require("path");

require("@kusto/language-service-next/bridge.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.js");

/* global Kusto */
const K = Kusto.Language;
const S = K.Symbols;

// Columns every Application Insights telemetry table has.
const COMMON = [
  "timestamp:datetime",
  "itemType:string",
  "itemId:string",
  "itemCount:int",
  "operation_Name:string",
  "operation_Id:string",
  "operation_ParentId:string",
  "operation_SyntheticSource:string",
  "session_Id:string",
  "user_Id:string",
  "user_AuthenticatedId:string",
  "user_AccountId:string",
  "application_Version:string",
  "client_Type:string",
  "client_Model:string",
  "client_OS:string",
  "client_IP:string",
  "client_City:string",
  "client_StateOrProvince:string",
  "client_CountryOrRegion:string",
  "client_Browser:string",
  "cloud_RoleName:string",
  "cloud_RoleInstance:string",
  "appId:string",
  "appName:string",
  "iKey:string",
  "sdkVersion:string",
  "customDimensions:dynamic",
];

const TABLES = {
  customMetrics: [
    "name:string",
    "value:real",
    "valueCount:int",
    "valueSum:real",
    "valueMin:real",
    "valueMax:real",
    "valueStdDev:real",
  ],
  traces: ["message:string", "severityLevel:int", "customMeasurements:dynamic"],
  exceptions: [
    "problemId:string",
    "handledAt:string",
    "type:string",
    "message:string",
    "assembly:string",
    "method:string",
    "outerType:string",
    "outerMessage:string",
    "outerAssembly:string",
    "outerMethod:string",
    "innermostType:string",
    "innermostMessage:string",
    "innermostAssembly:string",
    "innermostMethod:string",
    "severityLevel:int",
    "details:dynamic",
    "customMeasurements:dynamic",
  ],
  requests: [
    "id:string",
    "source:string",
    "name:string",
    "url:string",
    "success:string",
    "resultCode:string",
    "duration:real",
    "performanceBucket:string",
    "customMeasurements:dynamic",
  ],
};

function globals() {
  const tables = Object.entries(TABLES).map(
    ([name, columns]) =>
      new S.TableSymbol.$ctor7(name, `(${COMMON.concat(columns).join(", ")})`, null),
  );
  const database = new S.DatabaseSymbol.$ctor1("applicationinsights", tables, false);
  const cluster = new S.ClusterSymbol.ctor("applicationinsights", [database]);
  return K.GlobalState.Default.WithCluster(cluster).WithDatabase(database);
}

function lineOf(text, offset) {
  return text.slice(0, offset).split("\n").length;
}

function resultColumns(code) {
  const type = code.ResultType;
  const columns = [];
  if (type && type.Columns) {
    for (let i = 0; i < type.Columns.Count; i += 1) {
      const column = type.Columns.getItem(i);
      columns.push({ name: String(column.Name), type: String(column.Type.Name) });
    }
  }
  return columns;
}

function check(text, state) {
  const code = K.KustoCode.ParseAndAnalyze(text, state);
  const diagnostics = code.GetDiagnostics();
  const found = [];
  for (let i = 0; i < diagnostics.Count; i += 1) {
    const d = diagnostics.getItem(i);
    found.push({
      severity: String(d.Severity),
      code: String(d.Code),
      message: String(d.Message),
      line: lineOf(text, d.Start),
    });
  }
  return { diagnostics: found, columns: resultColumns(code) };
}

function main(argv) {
  if (argv.length === 0) {
    process.stderr.write("usage: check-kql.js FILE.kql...\n");
    return 2;
  }
  const state = globals();
  const files = {};
  let failed = false;
  for (const file of argv) {
    const result = check(fs.readFileSync(file, "utf8"), state);
    files[path.normalize(file)] = result;
    failed = failed || result.diagnostics.some((d) => d.severity === "Error");
  }
  process.stdout.write(`${JSON.stringify({ files }, null, 2)}\n`);
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
