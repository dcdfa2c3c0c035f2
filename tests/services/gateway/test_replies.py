"""Rendering of everything the bot says: pure functions, both languages, the disclaimer on every answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common.audio import AudioLimits
from services.common.contracts import CryResult
from services.common.topology import DEAD_LETTER_RETENTION_MS
from services.gateway import replies

PROBABILITIES = {"hungry": 0.62, "tired": 0.18, "discomfort": 0.11, "belly_pain": 0.06, "burping": 0.03}


def result(status: str, language: str, probabilities=PROBABILITIES, reason: str | None = None) -> CryResult:
    return CryResult(
        request_id="tg:1:2",
        chat_id=1,
        message_id=2,
        language=language,
        status=status,
        label=max(probabilities, key=probabilities.get) if probabilities else None,
        probabilities=probabilities,
        quality={"reason": reason, "duration_s": 6.0},
        model_version="test",
        message="",
        received_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("language_code", [None, "", "ru", "uk", "de", "en", "en-US", "EN"])
def test_english_only_for_english_speakers(language_code) -> None:
    expected = "en" if language_code and language_code.lower().startswith("en") else "ru"
    assert replies.language_for(language_code) == expected


def test_ok_names_the_top_reason_the_runners_up_and_what_to_try() -> None:
    ru = replies.render_result(result("ok", "ru"))
    en = replies.render_result(result("ok", "en"))

    assert ru.startswith("Скорее всего: голод (62%).")
    assert "Другие варианты: усталость, хочет спать 18%, дискомфорт" in ru and "11%" in ru
    assert "колики" not in ru  # only the top three reasons are shown
    assert replies.WHAT_PARENTS_TRY["ru"]["hungry"] in ru
    assert en.startswith("Most likely: hunger (62%).")
    assert replies.WHAT_PARENTS_TRY["en"]["hungry"] in en


def test_not_sure_says_so_and_asks_for_a_better_recording() -> None:
    uncertain = {"hungry": 0.34, "belly_pain": 0.33, "tired": 0.33}
    ru = replies.render_result(result("not_sure", "ru", uncertain))
    en = replies.render_result(result("not_sure", "en", uncertain))

    assert ru.startswith("Не могу уверенно назвать причину. Ближе всего: голод (34%).")
    assert "боль в животике / колики 33%" in ru
    assert replies.RECORD_AGAIN["ru"] in ru
    assert en.startswith("I cannot tell the reason with confidence.")
    assert "What parents commonly try" not in en  # no advice on a guess


@pytest.mark.parametrize("language", ["ru", "en"])
def test_not_a_cry_and_bad_audio_explain_what_to_do(language) -> None:
    not_a_cry = replies.render_result(result("not_a_cry", language, {}, reason="not_a_cry"))
    too_quiet = replies.render_result(result("bad_audio", language, {}, reason="too_quiet"))

    assert not_a_cry.startswith(replies.HEADLINES[language]["not_a_cry"])
    assert replies.RECORD_AGAIN[language] in not_a_cry
    assert replies.BAD_AUDIO_REASONS[language]["too_quiet"] in too_quiet
    assert replies.RECORD_AGAIN[language] in too_quiet


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("status", ["ok", "not_sure", "not_a_cry", "bad_audio"])
def test_every_answer_about_a_recording_carries_the_disclaimer(language, status) -> None:
    text = replies.render_result(
        result(status, language, PROBABILITIES if status in ("ok", "not_sure") else {})
    )
    assert text.endswith(replies.DISCLAIMER[language])


def test_a_label_the_bot_has_no_words_for_is_shown_as_it_is() -> None:
    text = replies.render_result(result("ok", "en", {"sleepy_v2": 0.9, "hungry": 0.1}))
    assert text.startswith("Most likely: sleepy_v2 (90%).")


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("code", ["empty", "too_large", "too_long", "not_audio", "corrupt"])
def test_every_upload_rejection_has_words_in_both_languages(language, code) -> None:
    limits = AudioLimits(max_bytes=20_000_000, max_duration_s=120)
    text = replies.render_rejection(code, language, limits)

    assert text.startswith(replies.BAD_AUDIO_REASONS[language][code])
    assert text.endswith(replies.DISCLAIMER[language])
    assert ("20" in text and "120" in text) == (code in ("too_large", "too_long"))


@pytest.mark.parametrize("language", ["ru", "en"])
def test_start_and_help_carry_the_disclaimer_and_limits(language) -> None:
    limits = AudioLimits(max_bytes=20_000_000, max_duration_s=120)
    assert replies.render_start(language).endswith(replies.DISCLAIMER[language])
    help_text = replies.render_help(language, limits)
    assert help_text.endswith(replies.DISCLAIMER[language]) and "120" in help_text


@pytest.mark.parametrize("language", ["ru", "en"])
def test_privacy_states_how_long_a_failed_recording_may_wait(language) -> None:
    days = DEAD_LETTER_RETENTION_MS // (24 * 3600 * 1000)
    assert f" {days} " in replies.render_privacy(language)
