"""corpus.similar: dictionary words ranked by how much they sound like the keyword."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audioconv.corpus import similar

ROOT = Path(__file__).resolve().parents[1]

# hand-written "IPA" (one letter per sound) so the ranking is known without espeak-ng
FAKE = {"welcome": "wɛlkʌm", "welkin": "wɛlkɪn", "weld": "wɛld", "welds": "wɛldz", "welders": "wɛldɚz",
        "welder": "wɛldɚ", "income": "ɪnkʌm", "table": "teɪbəl", "wellcum": "wɛlkʌm", "overwelcome": "oʊvɚwɛlkʌm",
        "kin": "kɪn", "lamp": "læmp"}


def fake_phonemes(words):
    return [FAKE[w] for w in words]


def test_symbols_drop_stress_and_keep_length_with_the_vowel():
    assert similar.phoneme_symbols("wˈɛlkʌm") == ("w", "ɛ", "l", "k", "ʌ", "m")
    assert similar.phoneme_symbols("ɡɹˈiːn") == ("ɡ", "ɹ", "iː", "n")


def test_distance_is_zero_for_the_same_sounds_and_cheaper_for_a_vowel_swap():
    kw = similar.phoneme_symbols("wɛlkʌm")
    assert similar.phoneme_distance(kw, kw) == 0.0
    vowel = similar.phoneme_distance(similar.phoneme_symbols("wɛlkɪm"), kw)  # one vowel for another
    consonant = similar.phoneme_distance(similar.phoneme_symbols("wɛlkʌn"), kw)  # one consonant for another
    assert vowel == pytest.approx(0.5 / 6) and consonant == pytest.approx(1 / 6)
    assert similar.phoneme_distance(similar.phoneme_symbols("teɪbəl"), kw) > consonant
    assert similar.phoneme_distance((), kw) == 1.0


def test_similar_words_rank_by_sound_and_skip_the_keyword_homophones_and_inflections():
    found = similar.similar_words("welcome", list(FAKE), count=4, exclude_substring="welcom",
                                  phonemize=fake_phonemes)
    # welkin: one vowel (0.5) and one consonant (1) of six sounds away; welder and income tie at 2.5 / 6, and
    # welder goes first for its onset ("wɛl", as the keyword's); kin and lamp tie at 0.75, kin is shorter
    assert found == [("welkin", 0.25), ("welder", 0.417), ("income", 0.417), ("kin", 0.75)]
    # never: the keyword, its homophone "wellcum" (a positive), "overwelcome" (holds the excluded substring);
    # weld, welds and welders are welder's family, so only welder is kept


def test_word_family_follows_stems_that_are_words():
    vocabulary = {"weld", "welder", "welders", "welds", "sing", "singer", "on", "only"}
    assert similar.word_family("welders", vocabulary) == "weld"
    assert similar.word_family("welds", vocabulary) == "weld"
    assert similar.word_family("singer", vocabulary) == "sing"
    assert similar.word_family("only", vocabulary) == "only"  # "on" + "ly": too short a stem to be its root
    assert similar.word_family("lamps", vocabulary) == "lamps"  # "lamp" is no word here: its own family


def test_similar_words_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="count"):
        similar.similar_words("welcome", list(FAKE), count=0, phonemize=fake_phonemes)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_gives_one_line_per_word_and_finds_welkin_near_welcome():
    words = ["table", "welkin", "ii", "income", "lamp"]  # "ii" reads as two words ("roman two"): still one line
    ipa = similar.espeak_phonemes(words)
    assert len(ipa) == len(words) and all(ipa)
    found = similar.similar_words("welcome", words, count=2, exclude_substring="welcom")
    assert [w for w, _ in found] == ["welkin", "income"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_the_script_prints_a_yaml_list_for_the_config(tmp_path):
    dictionary = tmp_path / "words"
    dictionary.write_text("table\nwelkin\nincome\nlamp\nwelcomed\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "similar_words.py"), "--count", "2", "--",
                           f"data.corpus.dictionary={dictionary}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'confusable_words: ["welkin", "income"]'  # quoted: YAML reads a bare no as false
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "similar_words.py"), "--",
                              f"data.corpus.dictionary={tmp_path / 'nope'}"], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    voice = subprocess.run([sys.executable, str(ROOT / "scripts" / "similar_words.py"), "--voice", "xx", "--",
                            f"data.corpus.dictionary={dictionary}"], capture_output=True, text=True)
    assert voice.returncode == 2 and "espeak-ng -v xx" in voice.stderr and len(voice.stderr.strip().splitlines()) == 1
