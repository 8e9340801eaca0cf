"""`tts.has_speech`: the predicate the broadcast core checks before it accepts a text, so a text
the synthesizer would refuse later ("text is empty") is refused while the person is still there.
"""

from pathlib import Path

import pytest

from tts import Synthesizer, TtsError, has_speech

NOTHING_TO_SAY = [
    "~",
    "!!!",
    "\u0007",  # a control character (BEL)
    "\U000e0001",  # an unassigned/tag character
    "\u200b\u00ad",  # zero-width space, soft hyphen
    " ... — ",
    "\u0300",  # a combining mark alone
    "",
    "   \n\t",
]
SOMETHING_TO_SAY = ["Bão", "a", "5", "#1", "°C", "& ", "Mất điện!!!", "~ Thôn 1 ~"]


@pytest.mark.parametrize("text", NOTHING_TO_SAY, ids=ascii)
def test_only_symbols_or_control_characters_have_nothing_to_say(text: str, tmp_path: Path) -> None:
    assert has_speech(text) is False
    with pytest.raises(TtsError, match="empty"):  # what synthesis would have said, too late
        Synthesizer(tmp_path).synthesize(text)


@pytest.mark.parametrize("text", SOMETHING_TO_SAY, ids=ascii)
def test_words_numbers_and_read_symbols_have_something_to_say(text: str) -> None:
    assert has_speech(text) is True


def test_not_a_text_has_nothing_to_say() -> None:
    assert has_speech(None) is False  # type: ignore[arg-type]
    assert has_speech(7) is False  # type: ignore[arg-type]
