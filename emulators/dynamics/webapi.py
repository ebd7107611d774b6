"""Routes one :class:`ApiRequest` to its handler; used for top-level calls and ``$batch`` parts."""

from __future__ import annotations

from emulators.dynamics.environment import Environment
from emulators.dynamics.errors import ODataError, bad_request, resource_not_found
from emulators.dynamics.functions import retrieve_current_organization, service_document, who_am_i
from emulators.dynamics.metadata import entity_definitions, global_option_set_definitions
from emulators.dynamics.protocol import (
    ApiRequest,
    ApiResponse,
    parse_path,
    parse_prefer,
    parse_query,
)
from emulators.dynamics.reads import QueryReader
from emulators.dynamics.writes import create, delete, upsert


def method_not_allowed(method: str, what: str) -> ODataError:
    """405 for a method the resource does not support (compose-http-requests doc)."""
    return ODataError(405, "0x80060888", f"The HTTP method '{method}' is not supported for {what}.")


class WebApi:
    """The Dataverse Web API over one environment."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def handle(self, req: ApiRequest) -> tuple[ApiResponse, str | None]:
        """Answer a request; errors become OData error responses. Also returns a created URL."""
        try:
            return self.dispatch(req)
        except ODataError as exc:
            return ApiResponse.error(exc), None

    def dispatch(self, req: ApiRequest) -> tuple[ApiResponse, str | None]:
        """Answer a request or raise :class:`ODataError`; returns the response and, for a
        create or upsert, the ``OData-EntityId`` URL (``Content-ID`` references use it)."""
        if not req.path.strip("/"):
            if req.method != "GET":
                raise method_not_allowed(req.method, "the service document")
            return service_document(self.env, req), None
        path = parse_path(req.path)
        options = parse_query(req.query)
        prefs = parse_prefer(req.header("prefer"))
        name = path.name
        if name == "WhoAmI":
            return who_am_i(self.env, req), None
        if name == "RetrieveCurrentOrganization":
            return retrieve_current_organization(self.env, req, path), None
        if name == "EntityDefinitions":
            if req.method != "GET":
                raise method_not_allowed(req.method, "EntityDefinitions")
            return entity_definitions(self.env, req, path, options), None
        if name == "GlobalOptionSetDefinitions":
            if req.method != "GET":
                raise method_not_allowed(req.method, "GlobalOptionSetDefinitions")
            return global_option_set_definitions(self.env, req, path, options), None
        if name == "$batch":
            raise bad_request("Nested batch requests are not supported.")
        data = self.env.db.by_set.get(name)
        if data is None:
            raise resource_not_found(name)
        method = req.method
        if path.key is None:
            if path.rest == ("$count",) and method == "GET":
                return QueryReader(self.env, req, data).count(), None
            if path.rest:
                raise resource_not_found("/".join(path.rest))
            if method == "GET":
                return QueryReader(self.env, req, data).collection(options, prefs), None
            if method == "POST":
                response, url = create(self.env, req, data, options, prefs)
                return response, url
            raise method_not_allowed(method, "a collection of entities")
        if path.rest:
            raise resource_not_found("/".join(path.rest))
        if method == "GET":
            return QueryReader(self.env, req, data).single(path.key, options, prefs), None
        if method == "PATCH":
            response, url = upsert(self.env, req, data, path.key, options, prefs)
            return response, url
        if method == "DELETE":
            return delete(self.env, req, data, path.key), None
        raise method_not_allowed(method, "a single entity")
