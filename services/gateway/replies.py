"""Everything the bot says to a parent, in Russian or English. Pure: no I/O, no aiogram.

A reply is rendered from the stored result (``CryResult``): its status picks the message, its probabilities
give the top reasons, and every answer about a recording ends with the disclaimer that it is not a diagnosis.
Label and reason ids come from the model; an id this module has no words for is shown as it is, so a new
label in the model never breaks a reply.
"""

from __future__ import annotations

from services.common.audio import AudioErrorCode, AudioLimits
from services.common.contracts import CryResult, Language
from services.common.topology import DEAD_LETTER_RETENTION_MS

TOP_REASONS = 3

DISCLAIMER: dict[Language, str] = {
    "ru": "⚠️ Это не диагноз. Если плач необычный, не стихает или у малыша температура, обратитесь к врачу.",
    "en": "⚠️ This is not a diagnosis. If the crying is unusual, does not stop, or your baby has a fever, "
    "see a doctor.",
}

LABEL_NAMES: dict[Language, dict[str, str]] = {
    "ru": {
        "hungry": "голод",
        "tired": "усталость, хочет спать",
        "discomfort": "дискомфорт (мокрый подгузник, жарко или холодно)",
        "belly_pain": "боль в животике / колики",
        "burping": "нужно срыгнуть",
        "scared": "испуг",
    },
    "en": {
        "hungry": "hunger",
        "tired": "tiredness, wants to sleep",
        "discomfort": "discomfort (wet nappy, too warm or too cold)",
        "belly_pain": "tummy ache / colic",
        "burping": "needs to burp",
        "scared": "fright",
    },
}

WHAT_PARENTS_TRY: dict[Language, dict[str, str]] = {
    "ru": {
        "hungry": "Предложите грудь или бутылочку, проверьте, когда было последнее кормление.",
        "tired": "Приглушите свет и звуки, покачайте, уложите спать.",
        "discomfort": "Проверьте подгузник, одежду и температуру в комнате.",
        "belly_pain": "Тёплая ладонь на животик, лёгкий массаж по часовой стрелке, «велосипед» ножками.",
        "burping": "Подержите малыша вертикально «столбиком» и мягко погладьте по спинке.",
        "scared": "Возьмите на руки, говорите спокойно, уберите резкие звуки.",
    },
    "en": {
        "hungry": "Offer the breast or a bottle; check when the last feed was.",
        "tired": "Dim the lights and sounds, rock gently, put the baby down to sleep.",
        "discomfort": "Check the nappy, the clothes and the room temperature.",
        "belly_pain": "A warm hand on the tummy, a gentle clockwise massage, 'bicycle' legs.",
        "burping": "Hold the baby upright against your shoulder and gently pat the back.",
        "scared": "Pick the baby up, speak calmly, remove sudden noises.",
    },
}

RECORD_AGAIN: dict[Language, str] = {
    "ru": "Запишите ещё раз в тихой комнате: 5–30 секунд, телефон в 20–50 см от малыша.",
    "en": "Please record again in a quiet room: 5–30 seconds, phone 20–50 cm from the baby.",
}

# Why a recording could not be analysed: the upload checks' codes and the classifier's quality reasons.
BAD_AUDIO_REASONS: dict[Language, dict[str, str]] = {
    "ru": {
        "empty": "Файл пустой.",
        "corrupt": "Файл повреждён, его не удалось прочитать.",
        "not_audio": "Это не похоже на аудио. Пришлите голосовое сообщение или аудиофайл "
        "(OGG, MP3, M4A, WAV, FLAC).",
        "too_large": "Файл слишком большой.",
        "too_long": "Запись слишком длинная. Хватит 5–30 секунд.",
        "too_short": "Запись слишком короткая. Нужно хотя бы 5 секунд плача.",
        "too_quiet": "Запись слишком тихая или беззвучная. Поднесите телефон ближе.",
        "clipped": "Звук перегружен (искажения). Держите телефон чуть дальше, в 20–50 см.",
        "not_a_cry": "Похоже, на записи нет детского плача.",
    },
    "en": {
        "empty": "The file is empty.",
        "corrupt": "The file is damaged and could not be read.",
        "not_audio": "This does not look like audio. Please send a voice message or an audio file "
        "(OGG, MP3, M4A, WAV, FLAC).",
        "too_large": "The file is too large.",
        "too_long": "The recording is too long. 5–30 seconds is enough.",
        "too_short": "The recording is too short. At least 5 seconds of crying are needed.",
        "too_quiet": "The recording is too quiet or silent. Hold the phone closer.",
        "clipped": "The sound is overloaded (distorted). Hold the phone a little further away, 20–50 cm.",
        "not_a_cry": "It does not sound like a baby crying.",
    },
}

LIMITS: dict[Language, str] = {
    "ru": "Ограничения: до {max_mb:.0f} МБ и {max_s:.0f} секунд.",
    "en": "Limits: up to {max_mb:.0f} MB and {max_s:.0f} seconds.",
}

HEADLINES: dict[Language, dict[str, str]] = {
    "ru": {
        "ok": "Скорее всего: {label} ({percent}).",
        "not_sure": "Не могу уверенно назвать причину. Ближе всего: {label} ({percent}).",
        "not_a_cry": "Похоже, на записи нет детского плача, поэтому причину назвать не могу.",
        "bad_audio": "Не удалось разобрать запись.",
        "other_reasons": "Другие варианты: {reasons}.",
        "what_to_try": "Что обычно пробуют: {tip}",
    },
    "en": {
        "ok": "Most likely: {label} ({percent}).",
        "not_sure": "I cannot tell the reason with confidence. Closest: {label} ({percent}).",
        "not_a_cry": "It does not sound like a baby crying, so I cannot name a reason.",
        "bad_audio": "I could not make out the recording.",
        "other_reasons": "Other possibilities: {reasons}.",
        "what_to_try": "What parents commonly try: {tip}",
    },
}

START: dict[Language, str] = {
    "ru": "Здравствуйте! Я Earshot. Пришлите голосовое сообщение с плачем малыша (5–30 секунд), "
    "и я подскажу самую вероятную причину и что обычно пробуют родители.\n/help — подробнее, "
    "/privacy — что происходит с записью.",
    "en": "Hello! I am Earshot. Send a voice message of your baby crying (5–30 seconds) and I will tell you "
    "the most likely reason and what parents commonly try.\n/help for more, /privacy for what happens to "
    "the recording.",
}

HELP: dict[Language, str] = {
    "ru": "Как пользоваться:\n"
    "1. Запишите голосовое сообщение, пока малыш плачет: 5–30 секунд, в тишине, телефон в 20–50 см.\n"
    "2. Отправьте его сюда (подойдёт и аудиофайл или видеосообщение).\n"
    "3. Через несколько секунд придёт ответ.\n\n"
    "Я различаю: голод, усталость, дискомфорт, боль в животике / колики, срыгивание. "
    "Испуг пока не распознаю: для него слишком мало проверенных записей. "
    "Если не уверен, так и скажу.",
    "en": "How to use it:\n"
    "1. Record a voice message while your baby cries: 5–30 seconds, somewhere quiet, phone 20–50 cm away.\n"
    "2. Send it here (an audio file or a video message works too).\n"
    "3. The answer arrives within seconds.\n\n"
    "I tell apart: hunger, tiredness, discomfort, tummy ache / colic, needing to burp. "
    "Fright is not supported yet: there are too few checked recordings of it. "
    "When I am not sure, I say so.",
}

PRIVACY: dict[Language, str] = {
    "ru": "Конфиденциальность: запись используется только для ответа и не сохраняется. "
    "Мы храним лишь результат анализа (причину и вероятности) и номер сообщения, чтобы не ответить дважды. "
    "Если обработка сорвалась, запись ждёт в очереди ошибок не дольше {retention_days} дн. "
    "и затем удаляется.",
    "en": "Privacy: the recording is used only to answer you and is not stored. We keep only the result "
    "(the reason and its probabilities) and the message number, so that we never answer twice. "
    "If processing fails, the recording waits in an error queue for at most {retention_days} days "
    "and is then deleted.",
}

ACCEPTED: dict[Language, str] = {
    "ru": "Слушаю запись…",
    "en": "Listening to the recording…",
}

SEND_AUDIO: dict[Language, str] = {
    "ru": "Пришлите, пожалуйста, голосовое сообщение с плачем малыша. /help — подробнее.",
    "en": "Please send a voice message of your baby crying. /help for more.",
}


def language_for(language_code: str | None) -> Language:
    """English for users whose Telegram language is English, Russian for everyone else."""
    if language_code and language_code.lower().split("-")[0] == "en":
        return "en"
    return "ru"


def render_result(result: CryResult) -> str:
    """The reply to a parent for one analysed recording, in the language the request came with."""
    language = result.language
    headlines = HEADLINES[language]
    ranked = sorted(result.probabilities.items(), key=lambda item: item[1], reverse=True)
    if result.status in ("ok", "not_sure") and ranked:
        top_label, top_probability = ranked[0]
        headline = headlines[result.status]
        lines = [headline.format(label=label_name(top_label, language), percent=percent(top_probability))]
        others = ranked[1:TOP_REASONS]
        if others:
            reasons = ", ".join(f"{label_name(label, language)} {percent(p)}" for label, p in others)
            lines.append(headlines["other_reasons"].format(reasons=reasons))
        tip = WHAT_PARENTS_TRY[language].get(top_label)
        if tip and result.status == "ok":
            lines.append(headlines["what_to_try"].format(tip=tip))
        if result.status == "not_sure":
            lines.append(RECORD_AGAIN[language])
    elif result.status == "not_a_cry":
        lines = [headlines["not_a_cry"], RECORD_AGAIN[language]]
    else:
        reason = result.quality.get("reason")
        lines = [headlines["bad_audio"]]
        if isinstance(reason, str) and reason in BAD_AUDIO_REASONS[language]:
            lines.append(BAD_AUDIO_REASONS[language][reason])
        lines.append(RECORD_AGAIN[language])
    lines.append(DISCLAIMER[language])
    return "\n".join(lines)


def render_rejection(code: AudioErrorCode, language: Language, limits: AudioLimits) -> str:
    """The answer to an upload the gateway refused before analysis, with what to do instead."""
    lines = [BAD_AUDIO_REASONS[language][code]]
    if code in ("too_large", "too_long"):
        lines.append(LIMITS[language].format(max_mb=limits.max_bytes / 1e6, max_s=limits.max_duration_s))
    lines += [RECORD_AGAIN[language], DISCLAIMER[language]]
    return "\n".join(lines)


def render_help(language: Language, limits: AudioLimits) -> str:
    limits_line = LIMITS[language].format(max_mb=limits.max_bytes / 1e6, max_s=limits.max_duration_s)
    return "\n".join([HELP[language], limits_line, "", DISCLAIMER[language]])


def render_start(language: Language) -> str:
    return START[language] + "\n\n" + DISCLAIMER[language]


def render_privacy(language: Language) -> str:
    return PRIVACY[language].format(retention_days=DEAD_LETTER_RETENTION_MS // (24 * 3600 * 1000))


def label_name(label: str, language: Language) -> str:
    return LABEL_NAMES[language].get(label, label)


def percent(probability: float) -> str:
    return f"{round(100 * probability)}%"
