"""Tests of the MQTT broker back-ends (broadcast.fleet.brokers)."""

import logging

_LOGGER = logging.getLogger(__name__)
