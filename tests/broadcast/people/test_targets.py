"""The fewest command topics that reach a broadcast's receivers (`targets.fewest_zones`): every
receiver hears the topics of the zones above its own, so a zone whose children are all
targeted stands for them, unless it holds receivers of its own."""

from __future__ import annotations

import pytest
from service_support import add_devices

from broadcast.const import ZoneKind
from broadcast.people import targets, zones
from broadcast.service import BroadcastService
from wire import protocol


@pytest.fixture
def tree(service: BroadcastService) -> BroadcastService:
    """A province of two communes of two villages each."""
    with service.db.session() as session:
        zones.create_zone(session, "tinh", "Tỉnh", ZoneKind.PROVINCE)
        for commune in ("xa-1", "xa-2"):
            zones.create_zone(session, commune, commune, ZoneKind.COMMUNE, "tinh")
            for village in ("a", "b"):
                zones.create_zone(
                    session, f"{commune}-{village}", village, ZoneKind.VILLAGE, commune
                )
    add_devices(service, {"loa-1a": "xa-1-a", "loa-2b": "xa-2-b"})
    return service


def _fewest(service: BroadcastService, zone_ids: list[str]) -> list[str]:
    with service.db.session() as session:
        return targets.fewest_zones(session, zone_ids)


def test_all_villages_of_a_commune_are_the_commune(tree: BroadcastService) -> None:
    assert _fewest(tree, ["xa-1-a", "xa-1-b"]) == ["xa-1"]
    assert _fewest(tree, ["xa-1-a", "xa-1-b", "xa-2-a"]) == ["xa-2-a", "xa-1"]


def test_every_commune_of_the_province_is_the_province_on_one_topic(
    tree: BroadcastService,
) -> None:
    assert _fewest(tree, ["xa-1", "xa-2"]) == ["tinh"]
    assert _fewest(tree, ["xa-1", "xa-2-a", "xa-2-b"]) == ["tinh"]  # through the commune
    with tree.db.session() as session:
        topics = targets.command_topics(session, ["xa-2", "xa-1"], ["loa-1a"])
    assert topics == [protocol.zone_command_topic("tinh"), protocol.device_command_topic("loa-1a")]


def test_a_partial_set_stays_as_it_is(tree: BroadcastService) -> None:
    assert _fewest(tree, ["xa-1-a"]) == ["xa-1-a"]
    assert _fewest(tree, ["xa-1", "xa-2-a"]) == ["xa-1", "xa-2-a"]
    assert _fewest(tree, ["gone", "xa-1-a"]) == ["gone", "xa-1-a"]  # a zone deleted since


def test_a_zone_with_receivers_of_its_own_is_not_reached_through_its_children(
    tree: BroadcastService,
) -> None:
    """Its own receivers were not targeted: its topic would reach them too."""
    add_devices(tree, {"loa-xa-1": "xa-1"})
    assert _fewest(tree, ["xa-1-a", "xa-1-b"]) == ["xa-1-a", "xa-1-b"]
    assert _fewest(tree, ["xa-2-a", "xa-2-b"]) == ["xa-2"]
