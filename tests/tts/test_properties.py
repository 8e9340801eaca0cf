"""Properties of tts.normalize that must hold for any text a commune officer may paste."""

import re
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tts import normalize
from tts.letters import is_syllable
from tts.lexicon import default_abbreviations, loanwords
from tts.numbers import roman_value
from tts.phonemes import phonemes

SAMPLE = Path(__file__).parent / "data" / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"
CASES = Path(__file__).parents[1] / "data" / "normalize_cases.tsv"

# Characters of notices that the rules look at: digits and their separators, letters in both
# cases, Vietnamese letters, units, brackets, dashes and line breaks.
_NOTICE_ALPHABET = (
    "0123456789"
    + "/.,:-–%°'() \n\t&+*~<>=@#"
    + "abcdghkmnpstxyz" + "ABCDGHKLMNPQRSTUVXÐĐ"
    + "ăâêôơưđáàảãạếềểễệốồổỗộớờởỡợứừửữự"
    + "ĂÂÊÔƠƯĐÁÀẾỀỐỒỚỜỨỪ"
)  # fmt: skip
_CONSONANTS = set("bcdđfghjklmnpqrstvwxz")
_DIGIT = re.compile(r"[0-9]")

_NOTICE_WORDS = [
    "ngày", "tháng", "năm", "thứ", "số", "lúc", "từ", "đến", "giờ", "quý", "khóa", "lần", "UBND",
    "TTg", "CT", "KH", "km", "mm", "ha", "kg", "%", "°C", "đồng", "Bão", "cấp", "gọi", "hotline",
    "SĐT:", "CN", "T2", "Zalo", "-", "/", "(", ")", ";", "I.", "II", "a)", "1.", "./.",
]  # fmt: skip
_NOTICE_TOKENS = st.one_of(
    st.sampled_from(_NOTICE_WORDS),
    st.from_regex(r"[0-9]{1,4}([./,:hH-][0-9]{1,4}){0,3}[a-zA-Z%]{0,3}", fullmatch=True),
    st.text(alphabet=_NOTICE_ALPHABET, min_size=1, max_size=8),
)
notice_text = st.lists(_NOTICE_TOKENS, max_size=25).map(" ".join)


def _sample_syllables() -> list[str]:
    """Vietnamese syllables from the sample plan that no rule treats specially."""
    special = {*default_abbreviations(), *loanwords(), "thứ", "tháng", "quý", "khóa", "lần", "số"}
    words = re.findall(r"[^\W\d_]+", SAMPLE.read_text(encoding="utf-8").lower())
    return sorted(
        {
            w
            for w in words
            if len(w) > 1 and is_syllable(w) and w not in special and w.upper() not in special
        }
    )


SYLLABLES = _sample_syllables()


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.one_of(st.text(), st.text(alphabet=_NOTICE_ALPHABET), notice_text))
def test_never_raises_and_leaves_no_digit(text: str) -> None:
    spoken = normalize(text)
    assert isinstance(spoken, str)
    assert not _DIGIT.search(spoken), spoken


@settings(max_examples=300, deadline=None, database=None)
@given(notice_text)
def test_every_line_is_a_tidy_sentence(text: str) -> None:
    for line in normalize(text).splitlines():
        assert line and line == line.strip() and "  " not in line, repr(line)
        assert line[-1] in ".!?…;:", repr(line)


@settings(max_examples=300, deadline=None, database=None)
@given(notice_text)
def test_no_consonant_is_left_for_the_voice_to_spell(text: str) -> None:
    """A lone consonant ("b", "T") always becomes its Vietnamese name ("bê", "tê")."""
    tokens = re.findall(r"[^\W\d_]+", normalize(text))
    assert not [t for t in tokens if len(t) == 1 and t.lower() in _CONSONANTS], tokens


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=10))
def test_all_caps_headings_are_read_as_words(words: list[str]) -> None:
    """An all-caps heading is never spelled letter by letter: its words come back, lowered."""
    spoken = normalize(" ".join(words).upper())
    expected = " ".join(words)
    assert spoken == expected[0].upper() + expected[1:] + "."


@settings(max_examples=200, deadline=None, database=None)
@given(st.from_regex(r"[A-ZĐ]{2,6}", fullmatch=True))
def test_unknown_acronyms_are_spelled_with_letter_names(acronym: str) -> None:
    assume(acronym not in default_abbreviations() and acronym.lower() not in loanwords())
    assume(not is_syllable(acronym) and roman_value(acronym) is None)  # "XIV" is a number
    tokens = normalize(f"Đơn vị {acronym} thông báo").split()[2:-2]
    # One name per letter, never the bare letters; vowels are their own names.
    assert not [t for t in tokens if len(t) == 1 and t.lower() in _CONSONANTS], tokens
    assert len(tokens) >= len(acronym)


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.one_of(
        st.from_regex(r"[A-Za-z][a-z]{0,11}", fullmatch=True),
        st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=3).map("".join),
    )
)
def test_words_never_switch_espeak_to_english(word: str) -> None:
    """Whatever Latin word turns up (brands, names, typos, syllables typed without their
    spaces), espeak must read it as Vietnamese."""
    assume(word.upper() not in default_abbreviations())
    spoken = normalize(f"Dùng {word} ngay")
    assert "(en)" not in phonemes(spoken), (word, spoken, phonemes(spoken))


def test_spoken_forms_are_fixed_points() -> None:
    """Normalizing what normalize() says changes nothing: no rule misreads its own output."""
    lines = CASES.read_text(encoding="utf-8").splitlines()
    spoken = [line.split("\t")[2].replace("\\n", "\n") for line in lines if line.count("\t") == 2]
    changed = [s for s in spoken[1:] if normalize(s) != s]
    assert changed == []
