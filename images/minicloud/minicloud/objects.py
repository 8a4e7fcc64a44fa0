"""Versioned objects (oslo.versionedobjects), registered per release.

A process of release R knows exactly the object versions of R: a 1.0 process
has Instance 1.0 only, so an Instance 1.1 primitive genuinely fails with
``IncompatibleObjectVersion``, as between Nova services. Each release gets its
own subclasses with their own lookup table (``ReleaseObjects``), rather than
oslo's process-global registry, so that tests can hold two releases side by
side in one process; ``obj_class_from_name`` is overridden to consult it.

Newer senders backport with ``obj_to_primitive(target_version=...)``, which
calls each class's ``obj_make_compatible``.
"""
from __future__ import annotations

import sys
import types
from functools import cache
from typing import Any, ClassVar

# oslo.versionedobjects imports oslo.messaging only for ``NoOpSerializer`` (the
# base of its serializer). Importing oslo.messaging pulls eventlet and friends,
# ~15 MB resident per process, and the whole cloud must fit in 600 MiB RSS. We
# do not use oslo.messaging (RPC is plain HTTP, see minicloud.rpc), so a
# minimal stand-in is enough -- unless the real one is already loaded.
if "oslo_messaging" not in sys.modules:
    _stub = types.ModuleType("oslo_messaging")

    class NoOpSerializer:
        """Stand-in for oslo_messaging.NoOpSerializer (identity serializer)."""

        def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
            return entity

        def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
            return entity

        def serialize_context(self, ctxt: Any) -> Any:
            return ctxt

        def deserialize_context(self, ctxt: Any) -> Any:
            return ctxt

    _stub.NoOpSerializer = NoOpSerializer  # type: ignore[attr-defined]
    sys.modules["oslo_messaging"] = _stub

from oslo_utils import versionutils
from oslo_versionedobjects import base, exception, fields

from minicloud.releases import Release

IncompatibleObjectVersion = exception.IncompatibleObjectVersion
UnsupportedObjectError = exception.UnsupportedObjectError


class MinicloudObject(base.VersionedObject):
    """Base of every minicloud object; resolves names in its release's table."""

    OBJ_PROJECT_NAMESPACE = "minicloud"
    OBJ_NAME: ClassVar[str] = ""
    # name -> class, for the release this class was built for (see ReleaseObjects)
    _release_classes: ClassVar[dict[str, type[MinicloudObject]]] = {}

    @classmethod
    def obj_name(cls) -> str:
        return cls.OBJ_NAME or cls.__name__

    @classmethod
    def obj_class_from_name(cls, objname: str, objver: str) -> type[MinicloudObject]:
        known = cls._release_classes.get(objname)
        if known is None:
            raise UnsupportedObjectError(objtype=objname)
        if objver == known.VERSION or versionutils.is_compatible(objver, known.VERSION):
            return known
        raise IncompatibleObjectVersion(objname=objname, objver=objver, supported=known.VERSION)

    def to_dict(self) -> dict[str, Any]:
        """The set fields as a plain dict."""
        return {name: getattr(self, name) for name in self.fields if self.obj_attr_is_set(name)}


class InstanceV10(MinicloudObject):
    """Instance 1.0 (release 1.0)."""

    OBJ_NAME = "Instance"
    VERSION = "1.0"
    fields = {
        "uuid": fields.UUIDField(),
        "name": fields.StringField(nullable=True),
        "project_id": fields.StringField(nullable=True),
        "user_id": fields.StringField(nullable=True),
        "flavor_id": fields.StringField(nullable=True),
        "image_ref": fields.StringField(nullable=True),
        "host": fields.StringField(nullable=True),
        "vm_state": fields.StringField(),
        "task_state": fields.StringField(nullable=True),
        "power_state": fields.IntegerField(default=0),
        "floating_ip": fields.StringField(nullable=True),
        "floating_port": fields.IntegerField(nullable=True),
        "workload_port": fields.IntegerField(nullable=True),
        "fault": fields.StringField(nullable=True),
    }


class InstanceV11(InstanceV10):
    """Instance 1.1 (release 1.1): adds ``description``."""

    VERSION = "1.1"
    fields = {**InstanceV10.fields, "description": fields.StringField(nullable=True)}

    def obj_make_compatible(self, primitive: dict[str, Any], target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop("description", None)


class InstanceV12(InstanceV11):
    """Instance 1.2 (release 2.0): adds ``locked``."""

    VERSION = "1.2"
    fields = {**InstanceV11.fields, "locked": fields.BooleanField(default=False)}

    def obj_make_compatible(self, primitive: dict[str, Any], target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 2):
            primitive.pop("locked", None)


class Flavor(MinicloudObject):
    VERSION = "1.0"
    fields = {"id": fields.StringField(), "name": fields.StringField(),
              "vcpus": fields.IntegerField(), "ram": fields.IntegerField(),
              "disk": fields.IntegerField()}


class Service(MinicloudObject):
    VERSION = "1.0"
    fields = {"id": fields.IntegerField(nullable=True), "host": fields.StringField(),
              "binary": fields.StringField(), "version": fields.IntegerField(),
              "release": fields.StringField(nullable=True),
              "disabled": fields.BooleanField(default=False),
              "forced_down": fields.BooleanField(default=False),
              "rpc_url": fields.StringField(nullable=True)}


class Migration(MinicloudObject):
    VERSION = "1.0"
    fields = {"id": fields.IntegerField(), "instance_uuid": fields.UUIDField(),
              "source_host": fields.StringField(nullable=True),
              "dest_host": fields.StringField(nullable=True),
              "status": fields.StringField()}


class RequestSpec(MinicloudObject):
    VERSION = "1.0"
    fields = {"instance_uuid": fields.UUIDField(), "project_id": fields.StringField(nullable=True),
              "flavor": fields.ObjectField("Flavor"),
              "ignore_hosts": fields.ListOfStringsField(default=[]),
              "force_hosts": fields.ListOfStringsField(default=[])}


_INSTANCE_BY_VERSION: dict[str, type[MinicloudObject]] = {
    "1.0": InstanceV10, "1.1": InstanceV11, "1.2": InstanceV12}
_COMMON = (Flavor, Service, Migration, RequestSpec)


class ReleaseObjects:
    """The object classes one release knows, and (de)serialization with them."""

    def __init__(self, instance_version: str) -> None:
        self.classes: dict[str, type[MinicloudObject]] = {}
        for parent in (_INSTANCE_BY_VERSION[instance_version], *_COMMON):
            name = parent.obj_name()
            cls = type(name, (parent,), {"_release_classes": self.classes, "OBJ_NAME": name,
                                          "__module__": __name__})
            # Build the field properties without touching oslo's global registry.
            base.VersionedObjectRegistry.objectify(cls)
            self.classes[name] = cls
        self.Instance = self.classes["Instance"]
        self.Flavor = self.classes["Flavor"]
        self.Service = self.classes["Service"]
        self.Migration = self.classes["Migration"]
        self.RequestSpec = self.classes["RequestSpec"]

    def version_of(self, name: str) -> str:
        return self.classes[name].VERSION

    def from_primitive(self, primitive: dict[str, Any]) -> MinicloudObject:
        """Hydrate a primitive; IncompatibleObjectVersion if it is too new for us."""
        name = primitive.get("versioned_object.name", "")
        cls = self.classes.get(name)
        if cls is None:
            raise UnsupportedObjectError(objtype=name)
        return cls.obj_from_primitive(primitive)

    def serialize(self, value: Any, target_versions: dict[str, str] | None = None) -> Any:
        """Objects (also nested in lists/dicts) to primitives, backported if asked."""
        if isinstance(value, MinicloudObject):
            target = (target_versions or {}).get(value.obj_name())
            if target and versionutils.convert_version_to_tuple(target) < \
                    versionutils.convert_version_to_tuple(value.VERSION):
                return value.obj_to_primitive(target_version=target)
            return value.obj_to_primitive()
        if isinstance(value, dict):
            return {k: self.serialize(v, target_versions) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.serialize(v, target_versions) for v in value]
        return value

    def deserialize(self, value: Any) -> Any:
        """Primitives (also nested) to objects; raises IncompatibleObjectVersion."""
        if isinstance(value, dict):
            if "versioned_object.name" in value:
                return self.from_primitive(value)
            return {k: self.deserialize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deserialize(v) for v in value]
        return value

    def instance_from_dict(self, data: dict[str, Any]) -> MinicloudObject:
        """An Instance from a ``minicloud.db.api`` dict (fields this version has)."""
        return self.Instance(**{k: data.get(k) for k in self.Instance.fields
                                if k in data and not (k == "locked" and data[k] is None)})

    def flavor_from_dict(self, data: dict[str, Any]) -> MinicloudObject:
        return self.Flavor(**{k: data[k] for k in self.Flavor.fields})


@cache
def _objects_for_instance_version(instance_version: str) -> ReleaseObjects:
    return ReleaseObjects(instance_version)


def for_release(release: Release) -> ReleaseObjects:
    """The objects ``release`` knows (cached: one set per object version)."""
    return _objects_for_instance_version(release.instance_version)
