"""One broadcast on its way: rendering, the MQTT dispatcher, answer-back, re-delivery."""
