"""Everything the bot says to a parent, in Russian or English. Pure: no I/O, no aiogram.

A reply is rendered from the stored result (``CryResult``): its status picks the message, and every answer
about a recording ends with the disclaimer that it is not a diagnosis. An answer that names reasons (``ok``,
``not_sure``) combines the sound with what the parent told us (``AnswerContext``: the baby's age band, the
context taps) through ``services.common.evidence.combine_evidence``; its headline and bars show the combined
probabilities, and its "why" lines keep each source apart, saying plainly when the sound of this recording
did not tell the reasons apart. Each status that is not an answer says concretely how to record again. Label
and reason ids come from the model; an id this module has no words for is shown as it is, so a new label in
the model never breaks a reply (and a label the model does not have, like ``scared`` today, is never shown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from services.common.audio import AudioErrorCode, AudioLimits
from services.common.contracts import CryResult, Language
from services.common.evidence import ReasonEvidence, combine_evidence, load_evidence_config, strongest_shift
from services.common.topology import DEAD_LETTER_RETENTION_MS

if TYPE_CHECKING:
    from services.store.repository import ChatData

TOP_REASONS = 3
NOT_SURE_REASONS = 2
BAR_CELLS = 10
# A source whose strongest shift (its factor for one reason over the reasons' average) is smaller than this
# is left out of the "why" lines: it barely moved the answer, and naming it would overstate it.
NOTABLE_SHIFT = 1.2

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

# Short names, for the "why" lines («по звуку: больше обычного похоже на усталость»).
SHORT_LABEL_NAMES: dict[Language, dict[str, str]] = {
    "ru": {
        "hungry": "голод",
        "tired": "усталость",
        "discomfort": "дискомфорт",
        "belly_pain": "боль в животике",
        "burping": "срыгивание",
        "scared": "испуг",
    },
    "en": {
        "hungry": "hunger",
        "tired": "tiredness",
        "discomfort": "discomfort",
        "belly_pain": "tummy ache",
        "burping": "needing to burp",
        "scared": "fright",
    },
}

# The baby's age bands (ids from services/common/reason_evidence.toml).
AGE_BAND_NAMES: dict[Language, dict[str, str]] = {
    "ru": {
        "0-4w": "0–4 недели",
        "4-8w": "4–8 недель",
        "2-6m": "2–6 месяцев",
        "7m-2y": "7 месяцев – 2 года",
        "over-2y": "старше 2 лет",
    },
    "en": {
        "0-4w": "0–4 weeks",
        "4-8w": "4–8 weeks",
        "2-6m": "2–6 months",
        "7m-2y": "7 months – 2 years",
        "over-2y": "over 2 years",
    },
}

# The context taps under an answer, per question and answer id of services/common/reason_evidence.toml.
CONTEXT_BUTTONS: dict[Language, dict[str, dict[str, str]]] = {
    "ru": {
        "since_feed": {"under_1h": "🍼 <1 ч", "1_2h": "🍼 1–2 ч", "2_3h": "🍼 2–3 ч", "over_3h": "🍼 >3 ч"},
        "nappy": {"checked": "🧷 подгузник проверен", "not_checked": "🧷 не проверяли"},
        "just_fed": {"yes": "🤱 только что поел"},
        "awake": {"was_sleeping": "😴 спал", "under_1h": "👀 <1 ч", "1_2h": "👀 1–2 ч", "over_2h": "👀 >2 ч"},
    },
    "en": {
        "since_feed": {"under_1h": "🍼 <1 h", "1_2h": "🍼 1–2 h", "2_3h": "🍼 2–3 h", "over_3h": "🍼 >3 h"},
        "nappy": {"checked": "🧷 nappy checked", "not_checked": "🧷 not checked"},
        "just_fed": {"yes": "🤱 just fed"},
        "awake": {
            "was_sleeping": "😴 was asleep",
            "under_1h": "👀 <1 h",
            "1_2h": "👀 1–2 h",
            "over_2h": "👀 >2 h",
        },
    },
}

# How a "why" line names the source of a context answer.
CONTEXT_SOURCES: dict[Language, dict[str, str]] = {
    "ru": {
        "since_feed": "по времени с последнего кормления",
        "nappy": "по подгузнику",
        "just_fed": "раз малыш только что поел",
        "awake": "по времени без сна",
    },
    "en": {
        "since_feed": "by the time since the last feed",
        "nappy": "by the nappy",
        "just_fed": "as the baby has just eaten",
        "awake": "by the time awake",
    },
}

# A line for an answer that is a reminder rather than evidence.
CONTEXT_NOTES: dict[Language, dict[tuple[str, str], str]] = {
    "ru": {
        ("nappy", "not_checked"): "подгузник ещё не проверяли: проверьте, это быстро исключит одну причину"
    },
    "en": {
        ("nappy", "not_checked"): "the nappy is not checked yet: checking it quickly rules one reason out"
    },
}

WHY: dict[Language, dict[str, str]] = {
    "ru": {
        "title": "Почему так:",
        "audio": "по звуку: больше обычного похоже на {reason}",
        "audio_at_chance": "по звуку: эта запись не помогла различить причины, поэтому ответ опирается "
        "{rests_on}",
        "rests_on_age": "на возраст малыша",
        "rests_on_context": "на ваши ответы кнопками",
        "rests_on_both": "на возраст малыша и ваши ответы кнопками",
        "rests_on_nothing": "только на то, как часто малыши вообще плачут по каждой причине",
        "age": "по возрасту ({band}): {shifts}",
        "more_common": "чаще {reason}",
        "less_common": "реже {reason}",
        "more_likely": "вероятнее {reason}",
        "less_likely": "реже {reason}",
        "taps": "Уточните кнопками, если знаете (по желанию), и ответ пересчитается: 🍼 сколько прошло с "
        "кормления, 🧷 подгузник, 🤱 только что поел, 👀 сколько не спит или 😴 спал.",
        "invite_age": "Укажите возраст малыша в /settings: с ним ответы точнее (по желанию, спрашиваю "
        "один раз).",
    },
    "en": {
        "title": "Why:",
        "audio": "by the sound: more like {reason} than usual",
        "audio_at_chance": "by the sound: this recording did not tell the reasons apart, so the answer rests "
        "{rests_on}",
        "rests_on_age": "on the baby's age",
        "rests_on_context": "on your answers to the buttons",
        "rests_on_both": "on the baby's age and your answers to the buttons",
        "rests_on_nothing": "only on how often babies cry for each reason at all",
        "age": "by age ({band}): {shifts}",
        "more_common": "{reason} is more common",
        "less_common": "{reason} is less common",
        "more_likely": "{reason} is more likely",
        "less_likely": "{reason} is less likely",
        "taps": "If you know, tap below (optional) and the answer is worked out again: 🍼 time since the "
        "last feed, 🧷 nappy, 🤱 just fed, 👀 time awake or 😴 was asleep.",
        "invite_age": "Tell me the baby's age in /settings to make the answers more accurate (optional; "
        "I ask only once).",
    },
}

CONTEXT_THANKS: dict[Language, dict[str, str]] = {
    "ru": {"saved": "Учёл, ответ обновлён.", "gone": "Этого ответа больше нет: данные удалены."},
    "en": {
        "saved": "Noted, the answer is updated.",
        "gone": "This answer no longer exists: the data was deleted.",
    },
}

# A plain explanation of each reason, shown under the top one.
EXPLANATIONS: dict[Language, dict[str, str]] = {
    "ru": {
        "hungry": "Плач похож на тот, которым малыши просят есть.",
        "tired": "Плач похож на плач уставшего малыша, которому трудно уснуть самому.",
        "discomfort": "Плач похож на плач от неудобства: мокрый подгузник, жарко или холодно, что-то жмёт.",
        "belly_pain": "Плач похож на плач при боли в животике (газы, колики): малыш может поджимать ножки.",
        "burping": "Плач похож на плач малыша, которому мешает воздух, проглоченный при кормлении.",
        "scared": "Плач похож на плач испуганного малыша: резкий звук или новая обстановка.",
    },
    "en": {
        "hungry": "The cry sounds like the one babies use to ask for food.",
        "tired": "The cry sounds like a tired baby who finds it hard to fall asleep alone.",
        "discomfort": "The cry sounds like discomfort: a wet nappy, too warm or too cold, something tight.",
        "belly_pain": "The cry sounds like tummy pain (wind, colic): the baby may pull the legs up.",
        "burping": "The cry sounds like a baby bothered by air swallowed during a feed.",
        "scared": "The cry sounds like a frightened baby: a sudden noise or a new place.",
    },
}

WHAT_PARENTS_TRY: dict[Language, dict[str, str]] = {
    "ru": {
        "hungry": "Предложите покормить: грудь или бутылочку; вспомните, когда было последнее кормление.",
        "tired": "Успокойте и приглушите свет и звуки, покачайте, уложите спать.",
        "discomfort": "Проверьте подгузник, температуру (потрогайте шею или спинку) и одежду.",
        "belly_pain": "Мягкий массаж животика по часовой стрелке, «велосипед» ножками, "
        "подержите малыша вертикально.",
        "burping": "Помогите срыгнуть: подержите малыша вертикально «столбиком» "
        "и мягко похлопайте по спинке.",
        "scared": "Возьмите на руки и успокойте: говорите тихо, уберите резкие звуки.",
    },
    "en": {
        "hungry": "Offer a feed: the breast or a bottle; think of when the last feed was.",
        "tired": "Calm the baby and dim the lights and sounds, rock gently, put the baby down to sleep.",
        "discomfort": "Check the nappy, the temperature (feel the neck or back) and the clothes.",
        "belly_pain": "A gentle clockwise tummy massage, 'bicycle' legs, hold the baby upright.",
        "burping": "Help the baby burp: hold them upright against your shoulder and gently pat the back.",
        "scared": "Pick the baby up and soothe them: speak softly, remove sudden noises.",
    },
}

RECORD_AGAIN: dict[Language, str] = {
    "ru": "Запишите ещё раз в тихой комнате: 5–30 секунд, телефон в 20–50 см от малыша.",
    "en": "Please record again in a quiet room: 5–30 seconds, phone 20–50 cm from the baby.",
}

# How to record again, for each reason a recording could not be judged; other reasons get RECORD_AGAIN.
RECORD_HOW: dict[Language, dict[str, str]] = {
    "ru": {
        "too_short": "Запишите 5–30 секунд, пока малыш плачет: удерживайте кнопку микрофона "
        "или сдвиньте её вверх, чтобы записывать без рук. Телефон в 20–50 см от малыша.",
        "too_quiet": "Поднесите телефон ближе, на 20–50 см от малыша, и не закрывайте микрофон пальцем. "
        "Запишите 5–30 секунд.",
        "clipped": "Держите телефон в 30–50 см от малыша, не у самого лица, и запишите 5–30 секунд.",
        "not_a_cry": "Запишите, когда малыш плачет: 5–30 секунд, телефон в 20–50 см, "
        "без телевизора, музыки и разговоров рядом.",
    },
    "en": {
        "too_short": "Record 5–30 seconds while the baby cries: hold the microphone button, or slide it up "
        "to record hands-free. Phone 20–50 cm from the baby.",
        "too_quiet": "Hold the phone closer, 20–50 cm from the baby, and keep your finger off the "
        "microphone. Record 5–30 seconds.",
        "clipped": "Hold the phone 30–50 cm from the baby, not right at the face, and record 5–30 seconds.",
        "not_a_cry": "Record while the baby is crying: 5–30 seconds, phone 20–50 cm away, with no TV, "
        "music or talking nearby.",
    },
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
        "too_quiet": "Запись слишком тихая или беззвучная.",
        "clipped": "Звук перегружен (искажения): телефон был слишком близко или слишком громко.",
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
        "too_quiet": "The recording is too quiet or silent.",
        "clipped": "The sound is overloaded (distorted): the phone was too close or too loud.",
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
        "not_sure": "Не могу уверенно назвать причину по этой записи. Ближе всего две:",
        "not_a_cry": "Похоже, на записи нет детского плача, поэтому причину назвать не могу.",
        "bad_audio": "Не удалось разобрать запись.",
        "top_reasons": "Три самых вероятных причины:",
        "what_to_try": "Что обычно пробуют: {tip}",
        "cry_likeness": "На плач запись похожа лишь на {percent}; что звучит вместо плача, я определить "
        "не умею.",
        "duration": "Длина записи: {seconds:.1f} с.",
        "feedback": "Угадал? Ответьте кнопкой ниже: так бот станет точнее.",
    },
    "en": {
        "ok": "Most likely: {label} ({percent}).",
        "not_sure": "I cannot tell the reason with confidence from this recording. The two closest:",
        "not_a_cry": "It does not sound like a baby crying, so I cannot name a reason.",
        "bad_audio": "I could not make out the recording.",
        "top_reasons": "The three most likely reasons:",
        "what_to_try": "What parents commonly try: {tip}",
        "cry_likeness": "The recording sounds like crying only {percent}; I cannot tell what it is instead.",
        "duration": "The recording is {seconds:.1f} s long.",
        "feedback": "Did I get it right? Tap a button below: it helps the bot get better.",
    },
}

START: dict[Language, str] = {
    "ru": "Здравствуйте! Я Earshot. Пришлите голосовое сообщение с плачем малыша (5–30 секунд), "
    "и я подскажу самую вероятную причину и что обычно пробуют родители.\n/help — подробнее, "
    "/privacy — что происходит с записью, /settings — возраст малыша и передача записей для улучшения "
    "модели.",
    "en": "Hello! I am Earshot. Send a voice message of your baby crying (5–30 seconds) and I will tell you "
    "the most likely reason and what parents commonly try.\n/help for more, /privacy for what happens to "
    "the recording, /settings for the baby's age and to donate recordings to improve the model.",
}

HELP: dict[Language, str] = {
    "ru": "Как пользоваться:\n"
    "1. Запишите голосовое сообщение, пока малыш плачет: 5–30 секунд, в тишине, телефон в 20–50 см.\n"
    "2. Отправьте его сюда (подойдёт и аудиофайл или видеосообщение).\n"
    "3. Через несколько секунд придёт ответ.\n\n"
    "Я различаю: голод, усталость, дискомфорт, боль в животике / колики, срыгивание. "
    "Испуг пока не распознаю: для него слишком мало проверенных записей. "
    "Если не уверен, так и скажу.\n\n"
    "Под ответом есть кнопки-уточнения, по одному нажатию и по желанию: сколько прошло с кормления, "
    "проверен ли подгузник, только что поел, сколько малыш не спит или спал. Ответ пересчитается на месте, "
    "а строки «Почему так» покажут, что следует из звука, что из возраста и что из ваших ответов. "
    "Если звук записи не помог различить причины, я так и напишу.\n\n"
    "Не больше {rate_limit} записей за {rate_window} мин.\n"
    "/settings — возраст малыша (по желанию, можно изменить или удалить) и передача записей для улучшения "
    "модели (выключена, пока вы её не включите)\n"
    "/my_data — что о вас хранится\n"
    "/delete_my_data — удалить всё о вас",
    "en": "How to use it:\n"
    "1. Record a voice message while your baby cries: 5–30 seconds, somewhere quiet, phone 20–50 cm away.\n"
    "2. Send it here (an audio file or a video message works too).\n"
    "3. The answer arrives within seconds.\n\n"
    "I tell apart: hunger, tiredness, discomfort, tummy ache / colic, needing to burp. "
    "Fright is not supported yet: there are too few checked recordings of it. "
    "When I am not sure, I say so.\n\n"
    "Under an answer there are optional one-tap buttons: time since the last feed, whether the nappy is "
    "checked, just fed, how long the baby has been awake or was asleep. The answer is worked out again in "
    'place, and its "Why" lines show what comes from the sound, what from the age and what from your '
    "answers. When the sound of a recording did not tell the reasons apart, I say so.\n\n"
    "At most {rate_limit} recordings per {rate_window} min.\n"
    "/settings for the baby's age (optional, can be changed or deleted) and to donate recordings to improve "
    "the model (off until you turn it on)\n"
    "/my_data for what is kept about you\n"
    "/delete_my_data to delete everything about you",
}

PRIVACY: dict[Language, str] = {
    "ru": "Конфиденциальность: запись используется только для ответа и не сохраняется, если вы сами не "
    "включили передачу записей в /settings (тогда она хранится {donation_days} дн.). "
    "Мы храним результат анализа (причину и вероятности), вашу оценку ответа, если вы её дали, возраст "
    "малыша и ответы на кнопки-уточнения, если вы их указали, и номер сообщения, чтобы не ответить дважды. "
    "Если обработка сорвалась, запись ждёт в очереди ошибок не дольше {retention_days} дн. "
    "и затем удаляется. /my_data — что хранится, /delete_my_data — удалить всё.",
    "en": "Privacy: the recording is used only to answer you and is not stored, unless you turned on "
    "donation in /settings (then it is kept for {donation_days} days). We keep the result (the reason and "
    "its probabilities), your rating of the answer, the baby's age and your answers to the buttons if you "
    "gave them, and the message number, so that we never answer twice. If processing fails, the recording "
    "waits in an error queue for at most {retention_days} days and is then deleted. /my_data shows what is "
    "kept, /delete_my_data deletes it.",
}

ACCEPTED: dict[Language, str] = {
    "ru": "Слушаю…",
    "en": "Listening…",
}

BACKLOG: dict[Language, dict[str, str]] = {
    "ru": {
        "estimate": "Сейчас много записей: передо мной в очереди ещё {waiting}. Ответ примерно через {wait}.",
        "unknown": "Сейчас в очереди ещё {waiting} зап.; сколько ждать, пока оценить не могу. "
        "Ответ придёт сюда, как только запись обработается.",
        "seconds": "{n} с",
        "minutes": "{n} мин",
    },
    "en": {
        "estimate": "It is busy right now: {waiting} recording(s) are ahead of yours. "
        "The answer should come in about {wait}.",
        "unknown": "{waiting} recording(s) are ahead of yours and I cannot estimate the wait yet. "
        "The answer comes here as soon as the recording is processed.",
        "seconds": "{n} s",
        "minutes": "{n} min",
    },
}

FAILED: dict[Language, str] = {
    "ru": "Не получилось обработать запись: у нас сбой, и повторные попытки не помогли. Это наша ошибка, "
    "не ваша. Пришлите запись ещё раз через пару минут.",
    "en": "I could not process the recording: something failed on our side and retrying did not help. "
    "It is our fault, not yours. Please send the recording again in a couple of minutes.",
}

NOT_TAKEN: dict[Language, str] = {
    "ru": "Не получилось принять запись из-за сбоя у нас. Пришлите её, пожалуйста, ещё раз.",
    "en": "I could not take the recording because of a fault on our side. Please send it again.",
}

RATE_LIMITED: dict[Language, str] = {
    "ru": "Вы прислали {limit} записей за {window} мин: это предел, чтобы бот успевал отвечать всем. "
    "Следующую запись я смогу послушать через {wait}. Если малыш вас тревожит, не ждите: "
    "обратитесь к врачу.",
    "en": "You have sent {limit} recordings in {window} min: that is the limit, so the bot can answer "
    "everyone. I can listen to the next one in {wait}. If your baby worries you, do not wait: see a doctor.",
}

REPEAT: dict[Language, str] = {
    "ru": "Эту запись вы уже присылали, ответ на неё выше. Чтобы проверить ещё раз, "
    "запишите новое голосовое сообщение.",
    "en": "You have already sent this recording; its answer is above. To check again, record a new voice "
    "message.",
}

SEND_AUDIO: dict[Language, str] = {
    "ru": "Пришлите, пожалуйста, голосовое сообщение с плачем малыша. /help — подробнее.",
    "en": "Please send a voice message of your baby crying. /help for more.",
}

FEEDBACK_BUTTONS: dict[Language, dict[str, str]] = {
    "ru": {"right": "👍 Угадал", "wrong": "👎 Не угадал", "ask": "❓ Что было на самом деле?"},
    "en": {"right": "👍 Right", "wrong": "👎 Wrong", "ask": "❓ What was it really?"},
}

FEEDBACK_THANKS: dict[Language, dict[str, str]] = {
    "ru": {
        "saved": "Спасибо, учту!",
        "choose": "Выберите, что было на самом деле.",
        "gone": "Этого ответа больше нет: данные удалены.",
    },
    "en": {
        "saved": "Thank you, noted!",
        "choose": "Choose what it really was.",
        "gone": "This answer no longer exists: the data was deleted.",
    },
}

SETTINGS: dict[Language, str] = {
    "ru": "Передача записей для улучшения модели: {state}.\n\n"
    "Если включить, мы будем хранить звук ваших следующих голосовых сообщений вместе с ответом бота и "
    "вашей оценкой.\n"
    "Зачем: чтобы проверять и дообучать модель на настоящих записях, и ответы становились точнее.\n"
    "Как долго: {days} дн. с момента записи, затем запись удаляется автоматически.\n"
    "Выключить можно здесь в любой момент: уже сохранённые записи тогда удалятся сразу. "
    "/my_data — что хранится, /delete_my_data — удалить всё.",
    "en": "Donating recordings to improve the model: {state}.\n\n"
    "If you turn it on, we keep the sound of your next voice messages together with the bot's answer and "
    "your rating.\n"
    "Why: to check and retrain the model on real recordings, so the answers get more accurate.\n"
    "How long: {days} days from the recording, then it is deleted automatically.\n"
    "You can turn it off here at any time, and the recordings already kept are then deleted at once. "
    "/my_data shows what is kept, /delete_my_data deletes everything.",
}

AGE_SETTINGS: dict[Language, dict[str, str]] = {
    "ru": {
        "text": "Возраст малыша: {age}.\nВ разном возрасте малыши чаще плачут по разным причинам, поэтому "
        "возраст уточняет ответ. Указывать не обязательно; изменить или удалить можно здесь в любой момент.",
        "unset": "не указан",
        "remove": "Не указывать",
        "saved": "Возраст сохранён: {age}.",
        "removed": "Возраст не указан.",
    },
    "en": {
        "text": "The baby's age: {age}.\nBabies cry for different reasons more often at different ages, so "
        "the age sharpens the answer. It is optional; change or delete it here at any time.",
        "unset": "not given",
        "remove": "Do not say",
        "saved": "Age saved: {age}.",
        "removed": "Age not given.",
    },
}

SETTINGS_WORDS: dict[Language, dict[str, str]] = {
    "ru": {
        "on": "включена",
        "off": "выключена",
        "turn_on": "Включить передачу записей",
        "turn_off": "Выключить передачу записей",
        "turned_on": "Спасибо! Передача записей включена.",
        "turned_off": "Передача записей выключена. Удалено сохранённых записей: {deleted}.",
    },
    "en": {
        "on": "on",
        "off": "off",
        "turn_on": "Turn donation on",
        "turn_off": "Turn donation off",
        "turned_on": "Thank you! Donation is on.",
        "turned_off": "Donation is off. Kept recordings deleted: {deleted}.",
    },
}

MY_DATA: dict[Language, dict[str, str]] = {
    "ru": {
        "title": "Что о вас хранится:",
        "requests": "• присланных записей (номер сообщения, язык, время): {n}",
        "first": "  первая — {date}",
        "predictions": "• ответов бота (причина и вероятности): {n}",
        "feedback": "• ваших оценок ответов: {n}",
        "donations": "• сохранённых записей со звуком: {n} (передача {state}); каждая удаляется через "
        "{days} дн.",
        "oldest": "  ближайшее удаление — {date}",
        "errors": "• отметок о сбоях обработки: {n}",
        "age": "• возраст малыша: {age}",
        "context": "• ваших уточнений под ответами (кормление, подгузник, сон): {n}",
        "none": "Ничего: мы о вас ничего не храним.",
        "footer": "Без передачи записей сам звук не хранится. /delete_my_data — удалить всё.",
    },
    "en": {
        "title": "What is kept about you:",
        "requests": "• recordings you sent (message number, language, time): {n}",
        "first": "  the first on {date}",
        "predictions": "• the bot's answers (reason and probabilities): {n}",
        "feedback": "• your ratings of answers: {n}",
        "donations": "• kept recordings with sound: {n} (donation {state}); "
        "each is deleted after {days} days",
        "oldest": "  next deletion on {date}",
        "errors": "• notes of failed processing: {n}",
        "age": "• the baby's age: {age}",
        "context": "• your answers to the buttons under answers (feed, nappy, sleep): {n}",
        "none": "Nothing: we keep nothing about you.",
        "footer": "Without donation the sound itself is not kept. /delete_my_data deletes everything.",
    },
}

DELETED: dict[Language, str] = {
    "ru": "Готово, всё удалено: записей — {requests}, ответов — {predictions}, оценок — {feedback}, "
    "уточнений — {context_answers}, сохранённых записей со звуком — {donations}, отметок о сбоях — {errors}; "
    "возраст малыша {age}. Передача записей выключена. Новые записи можно присылать как обычно.",
    "en": "Done, everything is deleted: recordings {requests}, answers {predictions}, ratings {feedback}, "
    "answers to the buttons {context_answers}, kept recordings with sound {donations}, notes of failures "
    "{errors}; the baby's age {age}. Donation is off. You can send new recordings as usual.",
}

AGE_DELETED: dict[Language, dict[bool, str]] = {
    "ru": {True: "удалён", False: "не был указан"},
    "en": {True: "deleted", False: "was not given"},
}


# The command menu Telegram shows, per language.
COMMANDS: dict[Language, dict[str, str]] = {
    "ru": {
        "help": "Как пользоваться",
        "settings": "Возраст малыша и передача записей",
        "my_data": "Что о вас хранится",
        "delete_my_data": "Удалить всё о вас",
        "privacy": "Что происходит с записью",
    },
    "en": {
        "help": "How to use it",
        "settings": "The baby's age and donating recordings",
        "my_data": "What is kept about you",
        "delete_my_data": "Delete everything about you",
        "privacy": "What happens to a recording",
    },
}


def language_for(language_code: str | None) -> Language:
    """English for users whose Telegram language is English, Russian for everyone else."""
    if language_code and language_code.lower().split("-")[0] == "en":
        return "en"
    return "ru"


@dataclass(frozen=True)
class AnswerContext:
    """What the parent told us beside the sound, and whether this answer invites them to give the age."""

    age_band: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    invite_age: bool = False


NO_CONTEXT = AnswerContext()


def asks_for_feedback(result: CryResult) -> bool:
    """Answers that name a reason carry the feedback and context buttons; the others have nothing to rate."""
    return result.status in ("ok", "not_sure") and bool(result.probabilities)


def evidence_applies(result: CryResult) -> bool:
    """Whether the age prior and the context ratios know every reason the model named.

    A model with a reason the evidence config does not know (a new label) is shown on its own, without the
    combination and without context buttons, rather than have that reason silently dropped.
    """
    return asks_for_feedback(result) and set(result.probabilities) <= set(
        load_evidence_config().age_prior.labels
    )


def combined_evidence(result: CryResult, told: AnswerContext = NO_CONTEXT) -> ReasonEvidence:
    """The sound of this recording combined with the age band and the context answers."""
    return combine_evidence(result.probabilities, told.age_band, told.context, load_evidence_config())


def shown_probabilities(result: CryResult, told: AnswerContext = NO_CONTEXT) -> dict[str, float]:
    """What an answer shows: the combined probabilities, or the model's own where evidence cannot apply."""
    if evidence_applies(result):
        return combined_evidence(result, told).probabilities
    return dict(result.probabilities)


def ranked(probabilities: Mapping[str, float]) -> list[tuple[str, float]]:
    """Reasons, most likely first."""
    return sorted(probabilities.items(), key=lambda item: item[1], reverse=True)


def render_result(result: CryResult, told: AnswerContext = NO_CONTEXT) -> str:
    """The reply to a parent for one analysed recording, in the language the request came with.

    An answer that names reasons shows the combined probabilities and says why; the others (not a cry,
    sound that cannot be judged) say what was heard and how to record again.
    """
    language = result.language
    headlines = HEADLINES[language]
    if not asks_for_feedback(result):
        return "\n".join([*_unjudged_lines(result), DISCLAIMER[language]])
    evidence = combined_evidence(result, told) if evidence_applies(result) else None
    reasons = ranked(evidence.probabilities if evidence else result.probabilities)
    why = [WHY[language]["title"], *why_lines(evidence, told, language)] if evidence else []
    if result.status == "ok":
        top_label, top_probability = reasons[0]
        lines = [
            headlines["ok"].format(label=label_name(top_label, language), percent=percent(top_probability))
        ]
        explanation = EXPLANATIONS[language].get(top_label)
        if explanation and (evidence is None or sound_points_to(evidence, top_label)):
            lines.append(explanation)
        if tip := WHAT_PARENTS_TRY[language].get(top_label):
            lines.append(headlines["what_to_try"].format(tip=tip))
        lines += ["", *why, "", headlines["top_reasons"], *reason_bars(reasons[:TOP_REASONS], language)]
    else:
        lines = [
            headlines["not_sure"],
            *reason_bars(reasons[:NOT_SURE_REASONS], language),
            RECORD_AGAIN[language],
        ]
        lines += ["", *why] if why else []
    lines += ["", WHY[language]["taps"]] if evidence else []
    lines.append(headlines["feedback"])
    if told.invite_age and told.age_band is None:
        lines.append(WHY[language]["invite_age"])
    lines.append(DISCLAIMER[language])
    return "\n".join(lines)


def sound_points_to(evidence: ReasonEvidence, label: str) -> bool:
    """Whether the sound itself favours ``label`` most: only then may an answer say the cry sounds like it."""
    return not evidence.audio_at_chance and strongest_shift(evidence.audio_factor)[0] == label


def why_lines(evidence: ReasonEvidence, told: AnswerContext, language: Language) -> list[str]:
    """One line per source that moved the answer: the sound, the age, each context answer.

    A source whose shift is under ``NOTABLE_SHIFT`` is left out; a sound at chance says so, and names what
    the answer rests on instead.
    """
    words = WHY[language]
    lines = []
    if evidence.audio_at_chance:
        lines.append(words["audio_at_chance"].format(rests_on=words[rests_on(told)]))
    else:
        label, shift = strongest_shift(evidence.audio_factor)
        if shift >= NOTABLE_SHIFT:
            lines.append(words["audio"].format(reason=short_name(label, language)))
    if told.age_band is not None and (shifts := shift_words(evidence.age_factor, "common", language)):
        band = AGE_BAND_NAMES[language].get(told.age_band, told.age_band)
        lines.append(words["age"].format(band=band, shifts=shifts))
    answered = [question for question in load_evidence_config().rules if question in evidence.context_factors]
    for question in answered:  # in the config's order, whatever order the answers came in
        if shifts := shift_words(evidence.context_factors[question], "likely", language):
            lines.append(f"{CONTEXT_SOURCES[language].get(question, question)}: {shifts}")
        if note := CONTEXT_NOTES[language].get((question, told.context.get(question, ""))):
            lines.append(note)
    return [f"• {line}" for line in lines]


def rests_on(told: AnswerContext) -> str:
    """Which evidence an answer rests on when the sound told nothing: the WHY key that says so."""
    if told.age_band is not None and told.context:
        return "rests_on_both"
    if told.age_band is not None:
        return "rests_on_age"
    return "rests_on_context" if told.context else "rests_on_nothing"


def shift_words(factor: Mapping[str, float], kind: str, language: Language) -> str:
    """ "вероятнее голод, реже срыгивание": the reasons a source moves up and down most, if notably.

    A reason is named only when it stands alone at its end: a rule that raises one reason lowers all the
    others alike, and naming one of them as "less likely" would invent a finding.
    """
    words = WHY[language]
    parts = []
    for direction, ratios in (
        ("more", factor),
        ("less", {label: 1 / value for label, value in factor.items()}),
    ):
        label, shift = strongest_shift(ratios)
        runner_up = max((value for other, value in ratios.items() if other != label), default=0.0)
        if shift >= NOTABLE_SHIFT and not math.isclose(shift, runner_up):
            parts.append(words[f"{direction}_{kind}"].format(reason=short_name(label, language)))
    return ", ".join(parts)


def _unjudged_lines(result: CryResult) -> list[str]:
    """Not a cry, or sound that cannot be judged: what we heard, and how to record again."""
    language = result.language
    headlines = HEADLINES[language]
    reason = result.quality.get("reason")
    reason = reason if isinstance(reason, str) else None
    if result.status == "not_a_cry":
        lines = [headlines["not_a_cry"]]
        cry_probability = result.quality.get("cry_probability")
        if isinstance(cry_probability, int | float):
            lines.append(headlines["cry_likeness"].format(percent=percent(cry_probability)))
        reason = "not_a_cry"
    else:
        lines = [headlines["bad_audio"]]
        if reason in BAD_AUDIO_REASONS[language]:
            lines.append(BAD_AUDIO_REASONS[language][reason])
        duration_s = result.quality.get("duration_s")
        if reason == "too_short" and isinstance(duration_s, int | float):
            lines.append(headlines["duration"].format(seconds=duration_s))
    lines.append(RECORD_HOW[language].get(reason or "", RECORD_AGAIN[language]))
    return lines


def reason_bars(ranked: list[tuple[str, float]], language: Language) -> list[str]:
    """One line per reason: a ten-cell text bar, the percentage, the reason's name."""
    return [f"{bar(p)} {percent(p):>4} {label_name(label, language)}" for label, p in ranked]


def bar(probability: float) -> str:
    filled = min(BAR_CELLS, max(0, round(probability * BAR_CELLS)))
    return "█" * filled + "░" * (BAR_CELLS - filled)


def render_failure(language: Language) -> str:
    """The honest answer when a worker gave up on a recording."""
    return FAILED[language] + "\n" + DISCLAIMER[language]


def render_rejection(code: AudioErrorCode, language: Language, limits: AudioLimits) -> str:
    """The answer to an upload the gateway refused before analysis, with what to do instead."""
    lines = [BAD_AUDIO_REASONS[language][code]]
    if code in ("too_large", "too_long"):
        lines.append(LIMITS[language].format(max_mb=limits.max_bytes / 1e6, max_s=limits.max_duration_s))
    lines += [RECORD_AGAIN[language], DISCLAIMER[language]]
    return "\n".join(lines)


def render_listening(language: Language, waiting: int, wait_s: float | None, show_backlog: bool) -> str:
    """ "Слушаю…", with an honest estimate of the wait when the queue is backed up."""
    if not show_backlog:
        return ACCEPTED[language]
    words = BACKLOG[language]
    if wait_s is None:
        line = words["unknown"].format(waiting=waiting)
    else:
        line = words["estimate"].format(waiting=waiting, wait=duration_words(wait_s, language))
    return ACCEPTED[language] + "\n" + line


def duration_words(seconds: float, language: Language) -> str:
    """A wait in words: seconds under a minute and a half, else whole minutes, always rounded up."""
    words = BACKLOG[language]
    if seconds < 90:
        return words["seconds"].format(n=max(1, math.ceil(seconds)))
    return words["minutes"].format(n=math.ceil(seconds / 60))


def render_rate_limited(language: Language, limit: int, window_s: float, retry_after_s: float) -> str:
    return RATE_LIMITED[language].format(
        limit=limit, window=round(window_s / 60), wait=duration_words(retry_after_s, language)
    )


def render_help(language: Language, limits: AudioLimits, rate_limit: int, rate_window_s: float) -> str:
    limits_line = LIMITS[language].format(max_mb=limits.max_bytes / 1e6, max_s=limits.max_duration_s)
    help_text = HELP[language].format(rate_limit=rate_limit, rate_window=round(rate_window_s / 60))
    return "\n".join([help_text, limits_line, "", DISCLAIMER[language]])


def render_start(language: Language) -> str:
    return START[language] + "\n\n" + DISCLAIMER[language]


def render_privacy(language: Language, donation_days: int) -> str:
    return PRIVACY[language].format(
        retention_days=DEAD_LETTER_RETENTION_MS // (24 * 3600 * 1000), donation_days=donation_days
    )


def render_settings(language: Language, donates: bool, days: int, age_band: str | None = None) -> str:
    """Donation (what, why, how long) and the baby's age, both optional."""
    state = SETTINGS_WORDS[language]["on" if donates else "off"]
    age = AGE_SETTINGS[language]["text"].format(age=age_name(age_band, language))
    return SETTINGS[language].format(state=state, days=days) + "\n\n" + age


def age_name(age_band: str | None, language: Language) -> str:
    if age_band is None:
        return AGE_SETTINGS[language]["unset"]
    return AGE_BAND_NAMES[language].get(age_band, age_band)


def render_my_data(language: Language, data: ChatData, days: int) -> str:
    """What the store holds about a chat, line by line."""
    words = MY_DATA[language]
    if not data.holds_anything():
        return words["none"]
    lines = [words["title"], words["requests"].format(n=data.requests)]
    if data.first_request_at is not None:
        lines.append(words["first"].format(date=data.first_request_at.date().isoformat()))
    lines += [words["predictions"].format(n=data.predictions), words["feedback"].format(n=data.feedback)]
    state = SETTINGS_WORDS[language]["on" if data.donates_audio else "off"]
    lines.append(words["donations"].format(n=data.donations, state=state, days=days))
    if data.oldest_donation_at is not None:
        next_deletion = data.oldest_donation_at + timedelta(days=days)
        lines.append(words["oldest"].format(date=next_deletion.date().isoformat()))
    lines += [
        words["errors"].format(n=data.errors),
        words["age"].format(age=age_name(data.age_band, language)),
        words["context"].format(n=data.context_answers),
        "",
        words["footer"],
    ]
    return "\n".join(lines)


def render_deleted(language: Language, deleted: ChatData) -> str:
    return DELETED[language].format(
        requests=deleted.requests,
        predictions=deleted.predictions,
        feedback=deleted.feedback,
        donations=deleted.donations,
        errors=deleted.errors,
        context_answers=deleted.context_answers,
        age=AGE_DELETED[language][deleted.age_band is not None],
    )


def label_name(label: str, language: Language) -> str:
    return LABEL_NAMES[language].get(label, label)


def short_name(label: str, language: Language) -> str:
    return SHORT_LABEL_NAMES[language].get(label, label)


def percent(probability: float) -> str:
    return f"{round(100 * probability)}%"
