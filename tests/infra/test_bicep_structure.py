"""The Bicep parses and hangs together: modules, parameters, security properties, roles, names.

No Bicep CLI can be installed here, so these structural checks (on pycep-parser trees) stand
in for ``bicep build``'s own validation; checkov (test_checkov.py) adds the security rules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.jobs import SYNC_JOBS_QUEUE
from shared.state.tables import TableNames
from tests.infra.bicep_tree import (
    body,
    code_text,
    condition_of,
    decorators,
    functions,
    loop_of,
    object_entries,
)
from tests.infra.conftest import INFRA, REPO

# Built-in role definition ids (Microsoft Learn, "Azure built-in roles", and the Functions docs
# on identity-based connections). Keyed by name so a wrong id in Bicep shows up as an unknown
# role.
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Storage Queue Data Reader": "19e7f393-937e-4f77-808e-94535e297925",
    "Storage Table Data Reader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
}
ROLE_NAMES = {role_id: name for name, role_id in BUILT_IN_ROLES.items()}

# What each principal gets, and on which resource (the `existing` symbol in rbac.bicep).
APP_ROLES = {
    ("Storage Blob Data Owner", "storage"),
    ("Storage Queue Data Contributor", "storage"),
    ("Storage Table Data Contributor", "storage"),
    ("Monitoring Metrics Publisher", "appInsights"),
    ("Key Vault Secrets User", "vault"),
}
OPERATOR_ROLES = {
    ("Storage Queue Data Reader", "storage"),
    ("Storage Queue Data Message Sender", "storage"),  # `dmsync backfill` queues its first job
    ("Storage Table Data Contributor", "storage"),  # retry, resync, backfill requests
}

# App settings the Flex Consumption plan refuses (Microsoft Learn, "App settings reference for Azure
# Functions", Flex Consumption plan deprecations).
FLEX_REFUSED_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
}

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


def bicep_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*.bicep") if "node_modules" not in p.parts)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_every_bicep_file_parses(bicep_facts: dict[str, Any]) -> None:
    """pycep-parser accepts every .bicep file under infra/ (and sees all of them)."""
    parsed = bicep_facts["bicep"]
    assert set(parsed) == {rel(p) for p in bicep_files()}
    failures = {path: entry["error"] for path, entry in parsed.items() if not entry["ok"]}
    assert failures == {}
    assert len(parsed) >= 10


def test_modules_exist_and_get_exactly_their_parameters(trees: dict[str, dict[str, Any]]) -> None:
    """Every module path exists; callers pass only declared params and every required one."""
    for path, tree in trees.items():
        for symbol, module in (tree.get("modules") or {}).items():
            target = (REPO / path).parent / module["detail"]["path"]
            assert target.is_file(), f"{path}: module {symbol} -> missing {target}"
            declared = trees[rel(target.resolve())]["parameters"] or {}
            passed = set((body(module).get("params") or {}).keys())
            required = {name for name, p in declared.items() if p.get("default") is None}
            assert passed <= set(declared), (
                f"{path}: {symbol} passes unknown {passed - set(declared)}"
            )
            assert required <= passed, f"{path}: {symbol} misses required {required - passed}"


def test_every_parameter_and_variable_is_used(trees: dict[str, dict[str, Any]]) -> None:
    """No declared parameter or variable is dead (a dead one usually means a missed wire-up)."""
    for path, tree in trees.items():
        text = code_text(REPO / path)
        for kind in ("parameters", "variables"):
            for name in tree.get(kind) or {}:
                uses = len(re.findall(rf"(?<![\w.']){re.escape(name)}\b", text))
                assert uses >= 2, f"{path}: {kind[:-1]} {name} is declared but never used"


def test_no_account_keys_or_connection_strings_anywhere() -> None:
    """No listKeys(), no AccountKey/SAS connection strings, no plain AzureWebJobsStorage."""
    forbidden = re.compile(
        r"listKeys|listAccountSas|listServiceSas|listConnectionStrings|AccountKey|"
        r"SharedAccessSignature|SharedAccessKey|InstrumentationKey\s*:|'AzureWebJobsStorage'\s*:|"
        r"^\s*AzureWebJobsStorage\s*:",
        re.IGNORECASE | re.MULTILINE,
    )
    for path in bicep_files():
        match = forbidden.search(code_text(path))
        assert match is None, f"{rel(path)} uses {match.group(0) if match else ''!r}"


def test_storage_is_locked_down(trees: dict[str, dict[str, Any]]) -> None:
    """Shared keys off, TLS 1.2, no public blob access, HTTPS only, private containers."""
    resources = trees["infra/modules/storage.bicep"]["resources"]
    props = body(resources["storage"])["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    assert body(resources["deploymentContainer"])["properties"]["publicAccess"] == "None"


def test_telemetry_and_vault_refuse_local_auth(trees: dict[str, dict[str, Any]]) -> None:
    """Application Insights and Log Analytics accept Entra ID only; the vault is RBAC-only."""
    monitoring = trees["infra/modules/monitoring.bicep"]["resources"]
    assert body(monitoring["appInsights"])["properties"]["DisableLocalAuth"] is True
    assert body(monitoring["workspace"])["properties"]["features"]["disableLocalAuth"] is True
    vault = trees["infra/modules/keyvault.bicep"]["resources"]["vault"]
    assert body(vault)["properties"]["enableRbacAuthorization"] is True
    assert body(vault)["properties"]["enableSoftDelete"] is True


def test_function_app_is_flex_consumption_python_311(trees: dict[str, dict[str, Any]]) -> None:
    """FC1 plan, Linux, Python 3.11, identity-authenticated blob deployment, scale as params."""
    tree = trees["infra/modules/functionapp.bicep"]
    resources, params = tree["resources"], tree["parameters"]
    plan = body(resources["plan"])
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True  # Linux
    site = body(resources["site"])
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    assert config["runtime"]["version"] == "pythonVersion"
    assert params["pythonVersion"]["default"] == "3.11"
    assert decorators(params["pythonVersion"])["allowed"] == ["3.11"]
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    scale = config["scaleAndConcurrency"]
    assert scale == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
    }
    assert decorators(params["instanceMemoryMB"])["allowed"] == [512, 2048, 4096]
    main = trees["infra/main.bicep"]["modules"]["functionApp"]
    assert body(main)["params"]["maximumInstanceCount"] == "maximumInstanceCount"
    assert body(main)["params"]["instanceMemoryMB"] == "instanceMemoryMB"
    for name in ("ftpPublishing", "scmPublishing"):
        assert body(resources[name])["properties"]["allow"] is False


def test_no_setting_flex_consumption_refuses(main_tree: dict[str, Any]) -> None:
    """None of the settings the Flex Consumption docs list as refused, in app settings or code."""
    settings = object_entries(main_tree["variables"]["appSettings"]["value"])
    assert not FLEX_REFUSED_SETTINGS & set(settings)
    for path in bicep_files():
        text = code_text(path)
        used = {name for name in FLEX_REFUSED_SETTINGS if re.search(rf"\b{name}\b", text)}
        assert used == set(), f"{rel(path)} mentions {used}"


def _assignments(tree: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """principal parameter -> {(role name, scope symbol)} for every role assignment in a file."""
    variables = {name: v["value"] for name, v in (tree.get("variables") or {}).items()}
    found: dict[str, set[tuple[str, str]]] = {}
    for resource in (tree.get("resources") or {}).values():
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = body(resource)
        role_ref = next(iter(functions(config["properties"], "subscription_resource_id")))
        assert role_ref["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        ref = role_ref["resource_name_1"]
        loop = loop_of(resource)
        role_vars = variables[loop[1]] if loop and ref == loop[0] else [ref]
        for role_var in role_vars:
            role_id = variables[role_var]
            assert GUID.match(role_id), f"{role_var} = {role_id!r} is not a role id"
            assert role_id in ROLE_NAMES, (
                f"{role_var} = {role_id} is not a documented built-in role"
            )
            principal = config["properties"]["principalId"]
            found.setdefault(principal, set()).add((ROLE_NAMES[role_id], config["scope"]))
    return found


def test_identity_gets_exactly_the_data_plane_roles_it_needs(
    trees: dict[str, dict[str, Any]],
) -> None:
    """The app identity: blob owner (host), queue and table contributor, metrics publisher,
    Key Vault secrets user, each on its own resource; the operator reads and writes requests.
    Nothing else."""
    rbac = trees["infra/modules/rbac.bicep"]
    assert _assignments(rbac) == {
        "appPrincipalId": APP_ROLES,
        "operatorPrincipalId": OPERATOR_ROLES,
    }
    existing = {name for name, r in rbac["resources"].items() if r["existing"]}
    assert existing == {"storage", "appInsights", "vault"}  # scopes are resources, never the RG
    for path, tree in trees.items():
        if path != "infra/modules/rbac.bicep":
            assert _assignments(tree) == {}, f"{path} assigns roles outside rbac.bicep"


def test_the_app_runs_as_the_identity_that_holds_the_roles(main_tree: dict[str, Any]) -> None:
    """The roles, the site identity, host storage and telemetry auth all use one identity."""
    modules = main_tree["modules"]
    assert _accessor(body(modules["rbac"])["params"]["appPrincipalId"]) == (
        "identity.outputs.principalId"
    )
    assert _accessor(body(modules["functionApp"])["params"]["identityId"]) == "identity.outputs.id"
    settings = object_entries(main_tree["variables"]["appSettings"]["value"])
    assert _accessor(settings["AzureWebJobsStorage__clientId"]) == "identity.outputs.clientId"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identity.outputs.clientId};Authorization=AAD"
    )
    assert "rbac" in str(body(modules["functionApp"]).get("dependsOn"))


def _accessor(node: Any) -> str:
    """``a.b.c`` for pycep's nested property_accessor nodes."""
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    return f"{_accessor(operands['operand_1'])}.{_accessor(operands['operand_2'])}"


def test_queues_and_tables_are_declared_in_one_place(trees: dict[str, dict[str, Any]]) -> None:
    """main.bicep lists the job queue, its poison queue and the state tables; storage loops them."""
    variables = trees["infra/main.bicep"]["variables"]
    queues, tables = variables["queueNames"]["value"], variables["tableNames"]["value"]
    assert queues == [SYNC_JOBS_QUEUE, f"{SYNC_JOBS_QUEUE}-poison"]
    # Exactly the tables the app's state store uses (its default prefix), so none is missing.
    assert tables == [name.lower() for name in TableNames().all()]
    assert all(TABLE_NAME.match(t) for t in tables)
    # 63-char queue limit minus "-poison" (Microsoft Learn, "Naming Queues and Metadata").
    assert all(QUEUE_NAME.match(q) and 3 <= len(q) <= 63 for q in queues)
    assert len(SYNC_JOBS_QUEUE) <= 56
    storage = trees["infra/modules/storage.bicep"]["resources"]
    assert loop_of(storage["queues"]) == ("queueName", "queueNames")
    assert loop_of(storage["tables"]) == ("tableName", "tableNames")
    for path, tree in trees.items():
        if path != "infra/main.bicep":
            literal_names = set(queues + tables) & {
                v["value"]
                for v in (tree.get("variables") or {}).values()
                if isinstance(v["value"], str)
            }
            assert literal_names == set(), f"{path} repeats {literal_names}"


def test_parameters_file_matches_main_bicep(main_tree: dict[str, Any]) -> None:
    """main.parameters.json names only real params, supplies every required one, and takes
    secrets from the azd environment, never as literal values."""
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    supplied = document["parameters"]
    params = main_tree["parameters"]
    assert set(supplied) <= set(params)
    required = {name for name, p in params.items() if p.get("default") is None}
    assert required <= set(supplied)
    for name, declaration in params.items():
        if "secure" in decorators(declaration) and name in supplied:
            assert re.fullmatch(r"\$\{[A-Z_]+=?\}", supplied[name]["value"]), name
    for name, entry in supplied.items():
        value = entry["value"]
        allowed = decorators(params[name]).get("allowed")
        if allowed is not None and not isinstance(value, str):
            assert value in allowed, f"{name}={value} is not one of {allowed}"


def test_azure_yaml_deploys_this_app_with_this_infra(
    bicep_facts: dict[str, Any], main_tree: dict[str, Any]
) -> None:
    """azd's service name is the site's azd-service-name tag; infra points at main.bicep."""
    config = bicep_facts["azure_yaml"]
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (REPO / config["infra"]["path"] / f"{config['infra']['module']}.bicep").is_file()
    service_name = main_tree["variables"]["serviceName"]["value"]
    assert config["services"] == {
        service_name: {"project": ".", "language": "python", "host": "function"}
    }
    assert main_tree["globals"]["scope"]["value"] == "resourceGroup"  # az deployment group create


@pytest.mark.parametrize("name", ["keyVault", "rbac"])
def test_key_vault_is_optional(main_tree: dict[str, Any], name: str) -> None:
    """The vault module is conditional; rbac gets an empty vault name when it is off."""
    module = main_tree["modules"][name]
    if name == "keyVault":
        assert condition_of(module) == "keyVaultEnabled"
    else:
        vault_name = body(module)["params"]["keyVaultName"]
        assert vault_name["operator"]["operands"]["condition"] == "keyVaultEnabled"
        assert vault_name["operator"]["operands"]["false_value"] == ""
