"""Tests of the MQTT broker back-ends (broadcast.brokers)."""

import logging

_LOGGER = logging.getLogger(__name__)
