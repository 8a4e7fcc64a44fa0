"""identity (:5000): the Keystone v3 subset openstacksdk and keystoneauth use.

Users, projects and roles are fixed seed data (``admin`` and ``demo``), with
ids derived from their names so every identity node agrees on them. Tokens are
random and live in a ``tokens`` table: in ``config.database`` when the host has
one (several controllers share it), otherwise in ``state_dir/identity.db``, so a
restarted identity -- or a second one sharing the file -- keeps every token valid.
"""
from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.config import Config, ConfigError
from minicloud.defects import has_defect
from minicloud.web import HTTPError, Request, Response, Router, serve

LOG = logging.getLogger("minicloud.identity")

TOKEN_TTL_SECONDS = 3600.0  # Keystone's default token lifetime
REGION = "RegionOne"
_ID_NAMESPACE = uuid.UUID("5b6f0f7e-8d4c-4a7e-9d35-7a1c2b9e0a11")
DOMAIN = {"id": "default", "name": "Default"}


def _stable_id(kind: str, name: str) -> str:
    """A Keystone-style hex id, the same on every identity node."""
    return uuid.uuid5(_ID_NAMESPACE, f"{kind}:{name}").hex


@dataclass(frozen=True)
class User:
    name: str
    password: str
    project: str  # the one project this user has roles on (and its default)
    roles: tuple[str, ...]

    @property
    def id(self) -> str:
        return _stable_id("user", self.name)


def seed_users(config: Config) -> dict[str, User]:
    """The seeded users: ``admin`` (admin on project admin) and ``demo`` (member on demo)."""
    return {
        "admin": User("admin", config.admin_password, "admin", ("admin", "member", "reader")),
        "demo": User("demo", "demo-password", "demo", ("member", "reader")),
    }


def _isotime(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TOKENS_DDL = ("CREATE TABLE IF NOT EXISTS tokens ("
               " id VARCHAR(64) NOT NULL PRIMARY KEY,"
               " user_id VARCHAR(64) NOT NULL,"
               " project_id VARCHAR(64),"
               " methods VARCHAR(64) NOT NULL,"
               " audit_id VARCHAR(64) NOT NULL,"
               " issued_at DOUBLE PRECISION NOT NULL,"
               " expires_at DOUBLE PRECISION NOT NULL)")


class TokenStore:
    """Tokens in one SQL table, safe to share between processes and hosts.

    ``CREATE TABLE IF NOT EXISTS`` and single-statement writes keep concurrent
    identity nodes from racing; SQLite waits (busy timeout) instead of failing.
    """

    def __init__(self, url: str, memory_only: bool = False, recreate: bool = False) -> None:
        #: the 1.1+token-memory variant's token cache, which replaced the table by mistake
        self.memory: dict[str, dict[str, Any]] | None = {} if memory_only else None
        connect_args = {"timeout": 15} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        with self.engine.begin() as conn:
            if recreate:  # the 1.1+tokens-table-recreated bug: a "fresh table" at every start
                conn.execute(sa.text("DROP TABLE IF EXISTS tokens"))
            conn.execute(sa.text(_TOKENS_DDL))

    def issue(self, user_id: str, project_id: str | None, methods: list[str],
              expires_at: float | None = None) -> dict[str, Any]:
        now = time.time()
        row = {"id": secrets.token_hex(32), "user_id": user_id, "project_id": project_id,
               "methods": ",".join(methods), "audit_id": secrets.token_urlsafe(16),
               "issued_at": now, "expires_at": expires_at or now + TOKEN_TTL_SECONDS}
        if self.memory is not None:
            self.memory[row["id"]] = row
            return row
        with self.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tokens (id, user_id, project_id, methods, audit_id,"
                                 " issued_at, expires_at) VALUES (:id, :user_id, :project_id,"
                                 " :methods, :audit_id, :issued_at, :expires_at)"), row)
            # Keep the table small: forget tokens that expired an hour ago.
            conn.execute(sa.text("DELETE FROM tokens WHERE expires_at < :cutoff"),
                         {"cutoff": now - 3600})
        return row

    def get(self, token_id: str) -> dict[str, Any] | None:
        """The token's row, or None if unknown or expired."""
        if not token_id:
            return None
        if self.memory is not None:
            row = self.memory.get(token_id)
        else:
            with self.engine.connect() as conn:
                row = conn.execute(sa.text("SELECT * FROM tokens WHERE id = :id"),
                                   {"id": token_id}).mappings().first()
        if row is None or row["expires_at"] <= time.time():
            return None
        return dict(row)

    def revoke(self, token_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM tokens WHERE id = :id"), {"id": token_id})


class Identity:
    """The identity API: authentication, token validation, catalog."""

    def __init__(self, config: Config, store: TokenStore) -> None:
        self.config = config
        self.store = store
        self.users = seed_users(config)
        self.users_by_id = {user.id: user for user in self.users.values()}

    # -- authentication ---------------------------------------------------

    def _find_user(self, spec: dict[str, Any]) -> User | None:
        if "id" in spec:
            return self.users_by_id.get(str(spec["id"]))
        domain = spec.get("domain") or {}
        if not _is_default_domain(domain):
            return None
        return self.users.get(str(spec.get("name", "")))

    def _scoped_project(self, user: User, scope: Any) -> str | None:
        """The project the token is scoped to (None: unscoped); 401 if not allowed."""
        if scope is None:
            return user.project  # Keystone scopes to the user's default project
        if scope == "unscoped":
            return None
        project = scope.get("project") if isinstance(scope, dict) else None
        if not isinstance(project, dict):
            raise HTTPError(401, "minicloud supports project scope only", "unauthorized")
        if "id" in project:
            wanted = next((name for name in ("admin", "demo")
                           if _stable_id("project", name) == project["id"]), None)
        elif _is_default_domain(project.get("domain") or {}):
            wanted = str(project.get("name", ""))
        else:
            wanted = None
        if wanted != user.project:
            raise HTTPError(401, f"user {user.name} has no role on the requested project", "unauthorized")
        return wanted

    def authenticate(self, request: Request) -> Response:
        body = request.json()
        auth = body.get("auth") if isinstance(body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        if not isinstance(identity, dict) or not isinstance(identity.get("methods"), list):
            raise HTTPError(400, "auth.identity.methods is required", "badRequest")
        methods = [str(m) for m in identity["methods"]]
        expires_at: float | None = None
        if "password" in methods:
            spec = (identity.get("password") or {}).get("user") or {}
            user = self._find_user(spec)
            if user is None or not secrets.compare_digest(str(spec.get("password", "")), user.password):
                raise HTTPError(401, "The request you have made requires authentication.", "unauthorized")
        elif "token" in methods:
            original = self.store.get(str((identity.get("token") or {}).get("id", "")))
            user = self.users_by_id.get(original["user_id"]) if original else None
            if original is None or user is None:
                raise HTTPError(401, "The token is invalid or has expired.", "unauthorized")
            expires_at = float(original["expires_at"])  # a rescoped token never outlives its parent
        else:
            raise HTTPError(401, f"unsupported auth methods {methods}; use password or token",
                            "unauthorized")
        project = self._scoped_project(user, auth.get("scope") if isinstance(auth, dict) else None)
        row = self.store.issue(user.id, _stable_id("project", project) if project else None,
                               methods, expires_at)
        LOG.info("issued token for %s (project %s, %s)", user.name, project, "+".join(methods))
        return Response(201, self.token_body(row), {"X-Subject-Token": row["id"]})

    # -- validation -------------------------------------------------------

    def _caller(self, request: Request) -> dict[str, Any]:
        row = self.store.get(request.headers.get("X-Auth-Token", ""))
        if row is None:
            raise HTTPError(401, "The request you have made requires authentication.", "unauthorized")
        return row

    def validate(self, request: Request) -> Response:
        self._caller(request)
        subject = request.headers.get("X-Subject-Token", "")
        row = self.store.get(subject)
        if row is None:
            raise HTTPError(404, "Could not find token.", "itemNotFound")
        with_catalog = "nocatalog" not in request.query
        return Response(200, self.token_body(row, with_catalog), {"X-Subject-Token": subject})

    def revoke(self, request: Request) -> Response:
        self._caller(request)
        subject = request.headers.get("X-Subject-Token", "")
        if self.store.get(subject) is None:
            raise HTTPError(404, "Could not find token.", "itemNotFound")
        self.store.revoke(subject)
        return Response(204)

    # -- bodies -----------------------------------------------------------

    def token_body(self, row: dict[str, Any], with_catalog: bool = True) -> dict[str, Any]:
        user = self.users_by_id[row["user_id"]]
        token: dict[str, Any] = {
            "methods": row["methods"].split(","),
            "user": {"id": user.id, "name": user.name, "domain": dict(DOMAIN),
                     "password_expires_at": None},
            "audit_ids": [row["audit_id"]],
            "issued_at": _isotime(row["issued_at"]),
            "expires_at": _isotime(row["expires_at"]),
        }
        if row["project_id"]:
            token["project"] = project_body(user.project)
            token["is_domain"] = False
            token["roles"] = [{"id": _stable_id("role", r), "name": r} for r in user.roles]
            if with_catalog:
                token["catalog"] = self.catalog()
        return {"token": token}

    def catalog(self) -> list[dict[str, Any]]:
        """identity, image and compute, at the public endpoints (load balancer if any)."""
        services = (("identity", "keystone", "identity", ""), ("image", "glance", "image", ""),
                    ("compute", "nova", "compute", "/v2.1"))
        entries = []
        for endpoint_name, service_name, service_type, suffix in services:
            try:
                url = self.config.public_endpoint(endpoint_name) + suffix
            except ConfigError:
                continue  # this host's config does not know that service
            service_id = _stable_id("service", service_type)
            entries.append({
                "id": service_id, "name": service_name, "type": service_type,
                "endpoints": [{"id": _stable_id("endpoint", f"{service_type}:{interface}"),
                               "interface": interface, "region": REGION, "region_id": REGION,
                               "url": url} for interface in ("public", "internal", "admin")]})
        return entries

    def list_projects(self, request: Request) -> dict[str, Any]:
        row = self._caller(request)
        user = self.users_by_id[row["user_id"]]
        visible = ["admin", "demo"] if "admin" in user.roles else [user.project]
        name = request.query.get("name")
        return {"projects": [project_body(p) for p in visible if name in (None, p)],
                "links": {"self": f"{self._base()}/v3/projects", "next": None, "previous": None}}

    def list_users(self, request: Request) -> dict[str, Any]:
        row = self._caller(request)
        caller = self.users_by_id[row["user_id"]]
        visible = list(self.users.values()) if "admin" in caller.roles else [caller]
        name = request.query.get("name")
        return {"users": [{"id": u.id, "name": u.name, "domain_id": DOMAIN["id"], "enabled": True,
                           "default_project_id": _stable_id("project", u.project)}
                          for u in visible if name in (None, u.name)],
                "links": {"self": f"{self._base()}/v3/users", "next": None, "previous": None}}

    def _base(self) -> str:
        return self.config.public_endpoint("identity")

    def version(self) -> dict[str, Any]:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self._base()}/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}


def project_body(name: str) -> dict[str, Any]:
    return {"id": _stable_id("project", name), "name": name, "domain": dict(DOMAIN),
            "domain_id": DOMAIN["id"], "enabled": True, "is_domain": False, "parent_id": DOMAIN["id"],
            "description": f"the {name} project", "tags": [], "options": {}}


def _is_default_domain(domain: dict[str, Any]) -> bool:
    if "id" in domain:
        return str(domain["id"]) == DOMAIN["id"]
    return str(domain.get("name", "")).lower() == DOMAIN["name"].lower()


def token_store_url(config: Config) -> str:
    """``config.database`` if the host has one, else a SQLite file in ``state_dir``."""
    if config.database:
        return config.database
    config.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{config.state_dir / 'identity.db'}"


def build_router(config: Config, identity: Identity) -> Router:
    router = Router()
    router.add("GET", "/healthz", lambda _r: {"service": "identity", "host": config.host,
                                               "release": config.release.label,
                                               "version": config.release.service_version, "status": "ok"})
    router.add("GET", "/", lambda _r: Response(300, {"versions": {"values": [identity.version()]}}))
    router.add("GET", "/v3", lambda _r: {"version": identity.version()})
    router.add("POST", "/v3/auth/tokens", identity.authenticate)
    router.add("GET", "/v3/auth/tokens", identity.validate)
    router.add("HEAD", "/v3/auth/tokens", identity.validate)
    router.add("DELETE", "/v3/auth/tokens", identity.revoke)
    router.add("GET", "/v3/projects", identity.list_projects)
    router.add("GET", "/v3/auth/projects", identity.list_projects)
    router.add("GET", "/v3/users", identity.list_users)
    return router


def main(config: Config) -> int:
    try:
        # The 1.1+token-memory bug: issued tokens live in this process only.
        store = TokenStore(token_store_url(config), memory_only=has_defect(config.release, "token-memory"),
                           recreate=has_defect(config.release, "tokens-table-recreated"))
    except sa.exc.SQLAlchemyError as exc:
        LOG.error("cannot open the token store: %s", exc)
        return 2
    identity = Identity(config, store)
    return serve(build_router(config, identity), config.bind, config.port, "identity",
                 config.shutdown_timeout)
