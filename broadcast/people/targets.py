"""Targets of a broadcast or schedule: any set of zones (commune, villages) and devices.

A zone reaches every receiver in it and below it; a device reaches that one loudspeaker cluster.
Commands go on the zones' topics and on the topics of devices no targeted zone already covers,
so no receiver gets one command twice. Authorization is the zones': a village head may target
their own village and the devices in it, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.errors import N_, PermissionDenied, ValidationError
from broadcast.people import zones
from broadcast.people.permissions import Action
from broadcast.store.models import Device, User, Zone
from wire import protocol

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Targets:
    zones: tuple[Zone, ...]
    devices: tuple[Device, ...]  # named one by one

    @property
    def zone_ids(self) -> list[str]:
        """The targeted zones without those a targeted ancestor covers (what is stored)."""
        chosen = set(self.zones)
        return [
            zone.id
            for zone in self.zones
            if not any(parent in chosen for parent in zones.ancestors_and_self(zone)[1:])
        ]

    @property
    def device_ids(self) -> list[str]:
        """Named devices that no targeted zone covers (the ones that need their own topic)."""
        if not self.devices:
            return []  # without loading every receiver of the zones (a province's thousands)
        covered = {device.id for device in zones.target_devices(self.zones)}
        return [device.id for device in self.devices if device.id not in covered]

    def receivers(self) -> list[Device]:
        """Every receiver reached, each once, ordered by id."""
        found = {device.id: device for device in zones.target_devices(self.zones)}
        found.update({device.id: device for device in self.devices})
        return [found[key] for key in sorted(found)]

    def receiver_ids(self) -> list[str]:
        """The ids of `receivers()`, read without loading the receivers."""
        found = set(zones.target_device_ids(self.zones))
        found.update(device.id for device in self.devices)
        return sorted(found)

    def footprint(self) -> list[Zone]:
        """The zones where it sounds: the targeted zones and the zones of named devices."""
        result = list(self.zones)
        for device in self.devices:
            if device.zone not in result:
                result.append(device.zone)
        return result


def _id_list(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationError(
            field, N_("phải là một danh sách mã (%(field)s)"), "not_a_list", field=field
        )
    return list(value)


def resolve(session: Session, zone_ids: object, device_ids: object = None) -> Targets:
    """Zones and devices by id; unknown ids and an empty choice are ValidationErrors."""
    wanted_zones = _id_list(zone_ids, "zones")
    wanted_devices = _id_list(device_ids, "devices")
    if not wanted_zones and not wanted_devices:
        raise ValidationError("zones", N_("hãy chọn ít nhất một khu vực hoặc cụm loa"), "required")
    found_zones = zones.resolve_zones(session, wanted_zones) if wanted_zones else []
    found_devices: list[Device] = []
    for device_id in wanted_devices:
        device = session.get(Device, device_id) if isinstance(device_id, str) else None
        if device is None:
            raise ValidationError(
                "devices", N_("không có cụm loa “%(id)s”"), "unknown_device", id=device_id
            )
        if device not in found_devices:
            found_devices.append(device)
    return Targets(tuple(found_zones), tuple(found_devices))


def stored(session: Session, zone_ids: Iterable[str], device_ids: Iterable[str]) -> Targets:
    """Targets saved earlier; a zone or device that no longer exists is skipped, not fatal."""
    found_zones = [zone for zone in (session.get(Zone, z) for z in zone_ids) if zone is not None]
    found_devices = [
        device for device in (session.get(Device, d) for d in device_ids) if device is not None
    ]
    return Targets(tuple(found_zones), tuple(found_devices))


def check_can_target(
    session: Session, user: User, targets: Targets, action: Action = Action.ANNOUNCE
) -> None:
    """PermissionDenied unless `user` may do `action` (announce, cancel) in every target's zone."""
    zones.check_can_target(session, user, targets.zones, action)
    if not targets.devices:
        return
    allowed = {zone.id for zone in zones.zones_for(session, user, action)}
    for device in targets.devices:
        if device.zone_id not in allowed:
            raise PermissionDenied(
                N_("người dùng “%(user)s” không được phát tới cụm loa “%(device)s”"),
                "device_out_of_reach",
                user=user.username,
                device=device.id,
            )


def command_topics(
    session: Session, zone_ids: Sequence[str], device_ids: Sequence[str]
) -> list[str]:
    """Where a broadcast's commands go: the fewest zones' topics that reach its zones'
    receivers (`fewest_zones`), then its named devices' topics."""
    return [protocol.zone_command_topic(z) for z in fewest_zones(session, zone_ids)] + [
        protocol.device_command_topic(d) for d in device_ids
    ]


def fewest_zones(session: Session, zone_ids: Sequence[str]) -> list[str]:
    """`zone_ids` with every zone whose children are all targeted, and which holds no receiver
    of its own, standing for them: every receiver also hears the topics of the zones above its
    own, so the same receivers get one command instead of one per child. An emergency to all
    100 communes of a province is one command on the province's topic, not 100 for the broker
    to take in and the server to sign, number and wait for. Two queries (the tree and which
    zones hold receivers), whatever the size."""
    tree = zones.ZoneTree.load(session)
    chosen = {z for z in zone_ids if z in tree.by_id}
    holding = set(session.scalars(select(Device.zone_id).distinct()))
    merged: list[str] = []
    changed = True
    while changed:
        changed = False
        parents = {tree.by_id[z].parent_id for z in chosen} - {None} - chosen - holding
        for parent in sorted(p for p in parents if p is not None):
            children = {child.id for child in tree.children(parent)}
            if children and children <= chosen:
                chosen = (chosen - children) | {parent}
                merged.append(parent)
                changed = True
    kept = [z for z in zone_ids if z in chosen or z not in tree.by_id]
    return kept + [z for z in merged if z in chosen]


def related_zone_ids(footprint: Iterable[Zone]) -> set[str]:
    """Zones whose loudspeakers sound together with these: each zone, its ancestors (their
    broadcasts reach it) and its descendants (it reaches theirs)."""
    related: set[str] = set()
    for zone in footprint:
        related.update(z.id for z in zones.ancestors_and_self(zone))
        related.update(z.id for z in zones.subtree(zone))
    return related
