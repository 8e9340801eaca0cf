"""tts package."""
