"""Every text a resident, an official or a moderator reads, in Russian, in one place.

Button labels are exact (SPEC §4): channels and the typed-label matching depend on them.
"""

from __future__ import annotations

# --- Button labels -------------------------------------------------------------------------
NEW_APPEAL = "Подать обращение"
MY_APPEALS = "Мои обращения"
HELP = "Справка"
AGREE = "Согласен"
DISAGREE = "Не согласен"
CANCEL = "Отмена"
BACK = "Назад"
SKIP = "Пропустить"
DONE = "Готово"
KEEP_NAME = "Оставить как есть"
SEND = "Отправить"
CONTINUE = "Продолжить"
START_OVER = "Начать заново"
ADD_TO = "Дополнить №{number}"
NEW_INSTEAD = "Новое обращение"
FORGET_ME = "Удалить мои данные"
FORGET_YES = "Да, удалить"
RESOLVED = "Вопрос решён"
UNRESOLVED = "Вопрос не решён"

# Typed words that open the main menu from anywhere. Typed text is compared folded: case,
# ё/е, commas, repeated spaces and a final «.», «!» or «?» do not matter.
MENU_WORDS = ("начать", "меню", "/start", "/menu", "start")
CANCEL_WORDS = ("отмена", "/cancel")

# What people type instead of a button's exact label (SPEC §3: typing a label presses the
# button): the obvious answers to the question the button answers. Only the buttons of the
# step at hand are looked at, so «да» means «Согласен» at the consent and «Да, удалить»
# at the confirmation of /forget.
TYPED_ALIASES: dict[str, tuple[str, ...]] = {
    AGREE: (
        "да",
        "согласна",
        "согласны",
        "да согласен",
        "да согласна",
        "я согласен",
        "я согласна",
        "даю согласие",
    ),
    DISAGREE: ("нет", "не согласна", "не согласны", "нет не согласен", "нет не согласна"),
    FORGET_YES: ("да", "удалить", "удалите", "да удалите"),
    SEND: ("да", "все верно", "верно", "да все верно", "отправь"),
    SKIP: ("нет", "пропуск", "не надо", "не нужно"),
    KEEP_NAME: ("оставить",),
    DONE: ("все",),
    RESOLVED: ("решен", "да решен"),
    UNRESOLVED: ("не решен", "нет не решен"),
}
# Greetings a first message may open with; what follows them decides whether the message
# already describes a problem (handlers/dialogue/offers.py, `describes_problem`).
GREETINGS = (
    "здравствуйте",
    "здравствуй",
    "привет",
    "приветствую",
    "добрый день",
    "день добрый",
    "добрый вечер",
    "доброе утро",
    "доброй ночи",
    "доброго дня",
    "доброго времени суток",
)

STATUS_TITLES = {
    "new": "Новое",
    "in_progress": "В работе",
    "answered": "Отвечено",
    "closed": "Закрыто",
    "rejected": "Отклонено",
}
# The same, in the middle of a sentence («уже закрыто»).
STATUS_WORDS = {
    "new": "новое",
    "in_progress": "в работе",
    "answered": "отвечено",
    "closed": "закрыто",
    "rejected": "отклонено",
}

# --- Main menu and help --------------------------------------------------------------------
GREETING = (
    "Здравствуйте! Это канал обратной связи: {bot_name}.\n"
    "Здесь можно сообщить о проблеме или задать вопрос — ответ придёт в этот же чат "
    "в течение {hours} ч.\n\nВыберите, что вы хотите сделать."
)
MENU_AGAIN = "Чем ещё можем помочь?"
# A first message that already describes a problem (handlers/dialogue/offers.py, IntakeStep).
INTAKE_GREETING = (
    "Здравствуйте! Это канал обратной связи: {bot_name}. Ответ на обращение придёт "
    "в этот же чат в течение {hours} ч."
)
INTAKE_OFFER = (
    "Подать обращение с этим текстом? Нажмите «Подать обращение»: текст станет описанием, "
    "останется выбрать тему и населённый пункт. Можно дописать подробности следующим "
    "сообщением — они добавятся к тексту."
)
INTAKE_OFFER_PHOTOS = (
    "Подать обращение с этими фото? Нажмите «Подать обращение»: фото будут приложены, "
    "останется выбрать тему, населённый пункт и описать проблему."
)
INTAKE_KEPT = "Это сообщение тоже сохранено для обращения."
HELP_TEXT = (
    "{bot_name}: канал обратной связи с жителями.\n\n"
    "Напишите о проблеме (ЖКХ, дороги, благоустройство и др.) — обращение получит номер, "
    "его увидят ответственные специалисты вашего поселения, а ответ придёт сюда "
    "в течение {hours} ч.\n\n"
    "Сообщение здесь не является официальным обращением по 59-ФЗ: для него нужна "
    "подтверждённая личность. Официальное обращение можно подать на Госуслугах "
    "(«Решаем вместе»): {formal_url}\n\n"
    "Политика обработки персональных данных: {policy_url}\n"
    "Чтобы отозвать согласие и удалить свои данные, нажмите «Удалить мои данные» "
    "или отправьте /forget."
)

# --- Consent (152-ФЗ: a document of its own) -----------------------------------------------
CONSENT = (
    "Согласие на обработку персональных данных\n\n"
    "Оператор: {bot_name}.\n"
    "Что обрабатывается: ваше имя, телефон (если укажете), идентификатор в мессенджере, "
    "текст обращения, адрес, фото и геопозиция.\n"
    "Зачем: чтобы рассмотреть ваше обращение, ответить на него и вести статистику обращений.\n"
    "Сколько: в течение срока рассмотрения и хранения обращений, либо до отзыва согласия.\n"
    "Как отозвать: отправьте /forget или нажмите «Удалить мои данные» в разделе «Справка» — "
    "имя и телефон будут удалены из всех ваших обращений.\n\n"
    "Политика обработки персональных данных (редакция {version}): {url}\n\n"
    "Вы даёте согласие?"
)
# Asked again after an answer that is neither button: the document itself stays above.
CONSENT_AGAIN = "Текст согласия — в сообщении выше. Вы даёте согласие?"
CONSENT_REFUSED = (
    "Без согласия на обработку персональных данных мы не можем принять обращение. "
    "Если передумаете — нажмите «Подать обращение» ещё раз."
)

# --- The appeal dialogue -------------------------------------------------------------------
ASK_CATEGORY = "Выберите тему обращения."
ASK_SETTLEMENT = "Выберите населённый пункт."
ASK_DESCRIPTION = (
    "Опишите проблему своими словами (от {min} до {max} знаков). Можно сразу приложить фото."
)
DESCRIPTION_TOO_SHORT = (
    "Слишком коротко: {length} из минимум {min} знаков. Я сохранил написанное — "
    "добавьте подробности следующим сообщением."
)
DESCRIPTION_TOO_LONG = (
    "Слишком длинно: {length} знаков при максимуме {max}. "
    "Пожалуйста, сократите текст и отправьте его снова."
)
# The description step when there is text already: a whole description (come back with
# «Назад», or brought from the first message) or the start of one that was too short.
DESCRIPTION_KEPT = (
    "Сейчас описание такое:\n«{text}»\nНажмите «Оставить как есть» или напишите описание заново."
)
DESCRIPTION_PARTIAL = (
    "Уже написано: «{text}» ({length} из минимум {min} знаков). "
    "Следующее сообщение добавится к этому тексту."
)
ASK_PLACE = (
    "Укажите адрес или место (улица, дом, ориентир) или отправьте геопозицию. "
    "Если адрес не нужен — «Пропустить»."
)
LOCATION_INVALID = (
    "Не удалось прочитать геопозицию. Напишите адрес словами или отправьте её ещё раз."
)
PLACE_TOO_LONG = "Адрес слишком длинный (больше {max} знаков). Напишите короче, пожалуйста."
ASK_PHOTOS = "Приложите фото (до {max} шт.) и нажмите «Готово», или «Пропустить»."
PHOTO_ADDED = "Фото добавлено ({count} из {max})."
PHOTOS_FULL = "Добавлено максимальное число фото ({max}); лишние не сохранены."
PHOTOS_EXPECTED = "Здесь ждём фото. Когда закончите, нажмите «Готово»."
ASK_NAME = "Как к вам обращаться? Напишите имя или нажмите «Пропустить»."
ASK_NAME_WITH_PROFILE = (
    "Как к вам обращаться? В профиле указано: {name}. "
    "Нажмите «Оставить как есть», напишите другое имя или «Пропустить»."
)
ASK_NAME_KEPT = (
    "Как к вам обращаться? Сейчас указано: {name}. "
    "Нажмите «Оставить как есть», напишите другое имя или «Пропустить»."
)
NAME_TOO_LONG = "Имя слишком длинное (больше {max} знаков). Напишите короче, пожалуйста."
ASK_PHONE = (
    "Телефон для связи (необязательно), например +7 912 345-67-89. "
    "Если не хотите указывать — «Пропустить»."
)
PHONE_INVALID = (
    "Не похоже на российский номер. Напишите номер в виде +7 912 345-67-89 "
    "или 8 912 345-67-89, либо нажмите «Пропустить»."
)
CONFIRM = "Проверьте обращение:\n\n{summary}\n\nВсё верно?"
SUMMARY_CATEGORY = "Тема: {value}"
SUMMARY_SETTLEMENT = "Населённый пункт: {value}"
SUMMARY_TEXT = "Текст: {value}"
SUMMARY_PLACE = "Адрес: {value}"
SUMMARY_LOCATION = "Геопозиция: {lat:.6f}, {lon:.6f}"
SUMMARY_PHOTOS = "Фото: {value}"
SUMMARY_NAME = "Имя: {value}"
SUMMARY_PHONE = "Телефон: {value}"
NOT_GIVEN = "не указано"
REGISTERED = (
    "Обращение №{number} зарегистрировано. Ответ придёт в этот чат до {deadline} "
    "(местное время, {tz_name}). Номер пригодится, если захотите что-то уточнить."
)
CANCELLED = "Обращение отменено, ничего не сохранено."
RESUME = (
    "У вас есть незавершённое обращение (шаг: «{step}»). Продолжить с того же места "
    "или начать заново?"
)
DRAFT_EXPIRED = "Незавершённое обращение удалено: прошло больше {days} дн. Можно начать заново."

STEP_TITLES = {
    "consent": "согласие",
    "category": "тема",
    "settlement": "населённый пункт",
    "description": "описание",
    "place": "адрес",
    "photos": "фото",
    "contact_name": "имя",
    "contact_phone": "телефон",
    "confirm": "проверка",
}

# --- Hints for unexpected input ------------------------------------------------------------
HINT_CHOOSE = "Пожалуйста, выберите вариант кнопкой или напишите его номер."
HINT_STALE_BUTTON = "Эта кнопка уже не действует."
HINT_UNSUPPORTED = (
    "Я понимаю текст, фото и геопозицию; стикеры, голосовые сообщения и файлы принять не могу."
)
HINT_TEXT_EXPECTED = "Пожалуйста, напишите ответ текстом."
# A button's label typed on a step that does not have that button.
HINT_NOT_HERE = "Кнопки «{label}» на этом шаге нет."
HINT_UNKNOWN_COMMAND = "Такой команды нет."
COMMAND_UNAVAILABLE = "Эта команда недоступна."
FLOOD_WARNING = (
    "Вы отправляете слишком много сообщений. Пожалуйста, подождите пару минут — "
    "сообщения за это время не будут обработаны."
)
SOMETHING_WENT_WRONG = (
    "Извините, не получилось обработать сообщение. Попробуйте, пожалуйста, ещё раз."
)

# --- My appeals and additions --------------------------------------------------------------
NO_APPEALS = "У вас пока нет обращений."
MY_APPEALS_TITLE = "Ваши обращения (сначала новые), всего {total}:"
MY_APPEALS_NEXT_TITLE = "Ваши обращения, {first}–{last} из {total}:"
MY_APPEAL_LINE = "№{number} от {date} · {category} · {settlement} · {status}"
MY_APPEAL_ANSWER = "  Ответ: {text}"
MY_APPEALS_MORE = "Показаны {first}–{last} из {total}. Следующие — кнопка «Ещё»."
MY_APPEALS_END = "Это все ваши обращения."
ADDITION_OFFER = (
    "У вас есть обращение в работе. Добавить это сообщение к нему или подать новое обращение?"
)
ADDITION_KEPT = "Это сообщение тоже сохранено: оно уйдёт вместе с первым, когда вы выберете."
ADDITION_TOO_LONG = (
    "Это сообщение не сохранено: вместе с предыдущими получается {length} знаков при "
    "максимуме {max}. Сократите его и отправьте снова."
)
ADDITION_ACCEPTED = "Дополнение к обращению №{number} принято и передано специалистам."
ADDITION_CLOSED = "Обращение №{number} уже закрыто, дополнить его нельзя."

# --- Forgetting (withdrawal of consent) ----------------------------------------------------
FORGET_CONFIRM = (
    "Отозвать согласие и удалить ваши данные? Имя и телефон будут удалены из всех ваших "
    "обращений; сами обращения останутся обезличенными для статистики."
)
FORGOTTEN = (
    "Согласие отозвано, ваши имя и телефон удалены. "
    "Чтобы подать новое обращение, понадобится дать согласие снова."
)

# --- The terminal demo (appeals-bot demo) ----------------------------------------------
DEMO_INTRO = (
    "Демо appeals-bot: вы — житель, пишущий боту. Каждая строка — одно сообщение.\n"
    "Кнопки показаны под текстом: напишите номер или название кнопки.\n"
    "/photo URL — приложить фото, /location 62.45 65.07 — отправить геопозицию.\n"
    "Кто пишет: /as admin:sergino — администратор Сергино, /as moderator — модератор,\n"
    "/as resident — снова житель. Выход — Ctrl-D (или Ctrl-C). Напишите «Начать»."
)
DEMO_DATABASE = "База данных демо: {path}"

# --- Answers, questions and notices to the resident (SPEC §4, §5) ------------------------
ANSWER_TO_RESIDENT = "Ответ на обращение №{number}\n{organisation}:\n\n{text}"
ANSWER_CONTINUED = "Ответ на обращение №{number} (продолжение)"
RATE_PROMPT = "Пожалуйста, оцените ответ: вопрос решён?"
RATED_RESOLVED = "Спасибо за оценку! Обращение №{number} закрыто как решённое."
RATED_UNRESOLVED = (
    "Спасибо, что сообщили. Обращение №{number} снова в работе, специалисты и модераторы "
    "уведомлены."
)
ALREADY_RATED = "Оценка ответа на обращение №{number} уже учтена. Спасибо!"
QUESTION_TO_RESIDENT = (
    "Вопрос по обращению №{number} от: {organisation}.\n\n{text}\n\n"
    "Ответьте, пожалуйста, следующим сообщением."
)
QUESTION_ANSWER_ACCEPTED = "Спасибо, ваш ответ добавлен к обращению №{number} и передан."
TAKEN_TO_RESIDENT = "Ваше обращение №{number} взято в работу: {organisation}."
ASSIGNED_TO_RESIDENT = "Ваше обращение №{number} передано для рассмотрения: {organisation}."
REJECTED_TO_RESIDENT = (
    "Обращение №{number} не может быть рассмотрено в этом канале. Причина: {reason}\n"
    "Если считаете это ошибкой, напишите нам ещё раз."
)
CLOSED_TO_RESIDENT = "Обращение №{number} закрыто."
CLOSED_COMMENT = "Комментарий: {comment}"
BANNED_NOTICE = (
    "Приём сообщений с вашей учётной записи приостановлен модератором. "
    "Официальное обращение можно подать на Госуслугах: {formal_url}"
)

# --- Notifications to staff (SPEC §5) ------------------------------------------------------
CARD_NEW = "Новое обращение №{number}"
CARD_SHOW = "Обращение №{number}"
CARD_REASSIGNED = "Обращение №{number} передано вашему поселению"
CARD_LINES = "Тема: {category}\nНаселённый пункт: {settlement}\nТекст: {text}\nАдрес: {place}"
CARD_LOCATION = (
    "Геопозиция: {lat:.6f}, {lon:.6f} — https://yandex.ru/maps/?pt={lon:.6f},{lat:.6f}&z=17"
)
CARD_PHOTOS = "Фото: {count} (во вложении)"
CARD_CONTACT = "Контакт: {contact}"
CARD_NO_CONTACT = "Контакт: не указан"
CARD_DEADLINE = "Ответить до: {deadline} ({tz})"
CARD_STATUS = "Статус: {status}"
CARD_FINISHED = "Обращение {status}: ответить или взять в работу уже нельзя."
CARD_HOW_TO_ANSWER = (
    "Ответить: /reply {number} текст — или ответьте на это сообщение цитатой.\n"
    "Взять в работу: /take {number} · Вопрос жителю: /ask {number} текст"
)
CARD_NO_ADMIN = "В поселении «{settlement}» нет администратора — обращение направлено модераторам."
ADDITION_TO_STAFF = "Дополнение к обращению №{number} от жителя:\n\n{text}"
RESIDENT_REPLY_TO_STAFF = "Ответ жителя на вопрос по обращению №{number}:\n\n{text}"
UNRESOLVED_TO_STAFF = (
    "Житель отметил, что вопрос по обращению №{number} не решён. Обращение снова в работе."
)
PHOTOS_ONLY = "(фото)"

# --- Staff commands ------------------------------------------------------------------------
STAFF_GREETING = "Здравствуйте! Вы подключены как {roles}.\n\n{help}"
ROLE_MODERATOR = "модератор района"
ROLE_ADMIN = "администратор: {settlements}"
STAFF_HELP_TITLE = "Команды (номер обращения — 57 или №57):"
USAGE = {
    "help": "/help — список команд",
    "list": "/list [new|work|overdue|answered|all] [после N] — обращения ваших поселений",
    "show": "/show N — обращение и вся переписка по нему",
    "take": "/take N — взять в работу",
    "reply": "/reply N текст — официальный ответ жителю",
    "ask": "/ask N текст — задать жителю вопрос",
    "close": "/close N [комментарий] — закрыть обращение",
    "assign": "/assign N код_поселения — передать другому поселению",
    "reject": "/reject N причина — отклонить (не обращение, спам, дубль)",
    "ban": "/ban платформа:id [причина] — заблокировать",
    "unban": "/unban платформа:id — разблокировать",
    "staff": "/staff list | add <код_поселения|moderator> платформа:id | remove платформа:id",
    "stats": "/stats [С] [ПО] — цифры за период (ДД.ММ.ГГГГ или ГГГГ-ММ-ДД)",
    "overdue": "/overdue [после N] — просроченные обращения",
    "invite": "/invite N — пригласить автора комментария в личные сообщения",
    "comment": "/comment код_поселения ссылка текст — зарегистрировать комментарий вручную (ОК)",
    "web": "/web — ссылка для входа в веб-панель (действует 10 минут, один раз)",
}
USAGE_PREFIX = "Формат: {usage}"
STAFF_PLAIN_TEXT = (
    "Чтобы ответить жителю, используйте /reply N текст или ответьте цитатой на уведомление "
    "об обращении. Список команд: /help"
)
UNKNOWN_STAFF_COMMAND = "Неизвестная команда. Список команд: /help"
MODERATOR_ONLY = "Эта команда доступна только модераторам."
APPEAL_NOT_FOUND = "Обращение №{number} не найдено среди обращений, доступных вам."
APPEAL_FINISHED = "Обращение №{number} уже {status}; действие невозможно."
ALREADY_IN_PROGRESS = "Обращение №{number} уже в работе."
TAKEN = "Обращение №{number} взято в работу. Житель уведомлён."
REPLIED = "Ответ на обращение №{number} отправлен жителю."
ASKED = "Вопрос по обращению №{number} отправлен жителю; его ответ придёт сюда."
CLOSED = "Обращение №{number} закрыто."
ASSIGNED = "Обращение №{number} передано: {settlement}. Администраторы и житель уведомлены."
ASSIGN_SAME = "Обращение №{number} уже относится к поселению «{settlement}»."
UNKNOWN_SETTLEMENT = "Нет поселения с кодом «{code}». Коды: {codes}"
REJECTED = "Обращение №{number} отклонено. Житель уведомлён."
BAD_IDENTITY = (
    "Идентификатор пишется как платформа:id, например vk:123456 (платформы: {platforms})."
)
BANNED = "{identity} заблокирован(а)."
BAN_UPDATED = "{identity} уже был(а) заблокирован(а); причина обновлена."
CANNOT_BAN_STAFF = "{identity} — сотрудник; сначала уберите его из списка: /staff remove {identity}"
UNBANNED = "{identity} разблокирован(а)."
NOT_BANNED = "{identity} не был(а) заблокирован(а)."
STAFF_LIST_TITLE = "Сотрудники:"
STAFF_LIST_MODERATOR = "• {identity} — модератор{source}"
STAFF_LIST_ADMIN = "• {identity} — {settlement}{source}"
STAFF_FROM_CONFIG = " (из файла настроек)"
STAFF_EMPTY = "Список сотрудников пуст."
STAFF_ADDED = "{identity} добавлен(а): {role}."
STAFF_ALREADY = "{identity} уже {role}."
STAFF_REMOVED = "{identity} удалён(а) из сотрудников."
STAFF_REMOVED_CONFIG = (
    "Внимание: запись есть в файле настроек и вернётся после перезапуска — удалите её и там."
)
STAFF_NOT_FOUND = "{identity} не значится среди сотрудников."
CANNOT_REMOVE_SELF = "Нельзя удалить самого себя."
LIST_TITLE = "Обращения ({filter}): {total}"
LIST_TITLE_NEXT = "Обращения ({filter}), продолжение после №{after}:"
LIST_LINE = "№{number} · {date} · {category} · {settlement} · {status} · срок {deadline}"
# Lists are counted up to a limit: past it, «больше 1000».
LIST_MANY = "больше {count}"
LIST_NEXT = "Дальше — кнопка «Ещё» или {command} после {after}"
LIST_END = "Больше обращений нет ({filter})."
LIST_EMPTY = "Обращений нет ({filter})."
LIST_FILTERS = {
    "open": "не отвеченные",
    "new": "новые",
    "work": "в работе",
    "overdue": "просроченные",
    "answered": "отвеченные",
    "all": "все",
}
OVERDUE_TITLE = "Просроченные обращения: {total}"
OVERDUE_TITLE_NEXT = "Просроченные обращения, продолжение после №{after}:"
OVERDUE_EMPTY = "Просроченных обращений нет."
THREAD_TITLE = "Переписка:"
THREAD_LINE = "{time} · {author}: {text}"
THREAD_RESIDENT = "житель"
THREAD_KINDS = {
    "created": "обращение",
    "addition": "дополнение",
    "answer": "ответ",
    "question": "вопрос",
    "reply": "ответ на вопрос",
    "status": "статус → {status}",
    "assigned": "передано → {settlement}",
    "rating": "оценка: {text}",
    "close": "закрыто",
}
RATING_TITLES = {"resolved": "решён", "unresolved": "не решён"}
STATS_TITLE = "Обращения с {start} по {end}: {total}"
STATS_BY_STATUS = "По статусам:"
STATS_BY_CATEGORY = "По темам:"
STATS_BY_SETTLEMENT = "По поселениям:"
STATS_LINE = "  {title}: {count}"
BAD_DATE = "Не понимаю дату «{text}». Пишите ДД.ММ.ГГГГ или ГГГГ-ММ-ДД."
BAD_PERIOD = "Начало периода позже конца."
UNDELIVERABLE_TO_STAFF = (
    "Не удалось доставить сообщение по обращению №{number} сотруднику {identity} "
    "(причина: {reason}). Пересылаю модераторам:\n\n{text}"
)
UNDELIVERABLE_TO_RESIDENT = (
    "Не удалось доставить жителю ({identity}) сообщение по обращению №{number} "
    "(причина: {reason}). Свяжитесь с ним другим способом, если есть контакт. Текст:\n\n{text}"
)
UNDELIVERABLE_UNDER_COMMENT = (
    "Не удалось опубликовать ответ под комментарием №{number} (причина: {reason}). "
    "Опубликуйте его вручную, если комментарий ещё на месте. Текст:\n\n{text}"
)
DEMO_AS = "— теперь вы пишете как {who} —"
DEMO_AS_USAGE = (
    "Формат: /as resident | /as moderator | /as admin:<код_поселения> (например admin:sergino)"
)

# --- Shown by channels ---------------------------------------------------------------------
MORE = "Ещё"
MORE_OPTIONS = "Ещё варианты:"
# Buttons a platform adds where the question asks for a place or a phone (MAX).
SHARE_LOCATION = "Отправить геопозицию"
SHARE_CONTACT = "Отправить номер телефона"
# The one-time notice a MAX button press is answered with (POST /answers).
BUTTON_PRESSED = "Принято"

# Telegram's command menu (setMyCommands): command, description.
TG_COMMANDS = (
    ("start", "Главное меню"),
    ("help", "Справка"),
    ("cancel", "Отменить обращение"),
    ("forget", "Удалить мои данные"),
)
TG_STAFF_COMMANDS = (
    ("help", "Список команд"),
    ("list", "Обращения ваших поселений"),
    ("show", "Обращение и переписка: /show N"),
    ("take", "Взять в работу: /take N"),
    ("reply", "Ответ жителю: /reply N текст"),
    ("ask", "Вопрос жителю: /ask N текст"),
    ("close", "Закрыть: /close N"),
    ("invite", "Пригласить автора комментария: /invite N"),
    ("overdue", "Просроченные (модераторам)"),
    ("stats", "Цифры за период (модераторам)"),
)

# --- Deadlines: reminders and escalations (SPEC §8) ----------------------------------------
DEADLINE_REMINDER = (
    "Напоминание: срок ответа на обращение №{number} — {deadline} ({tz}), осталось {left}."
)
DEADLINE_REMINDER_LATE = (
    "Срок ответа на обращение №{number} истёк {deadline} ({tz}). Ответьте, пожалуйста, "
    "как можно скорее: обращение передано модераторам."
)
DEADLINE_REOPENED = "Житель отметил, что вопрос не решён: нужен новый ответ."
DEADLINE_ABOUT = "Тема: {category} · {settlement} · {status}\nТекст: {text}"
DEADLINE_HOW_TO_ANSWER = "Ответить: /reply {number} текст · Посмотреть: /show {number}"
ESCALATION = (
    "Просрочено обращение №{number}: нет ответа к сроку {deadline} ({tz}), просрочка {late}."
)
ESCALATION_ADMINS = "Ответственные: {admins}"
ESCALATION_NO_ADMINS = "У поселения нет администратора."
ESCALATION_HOW_TO_ACT = (
    "Посмотреть: /show {number} · Передать: /assign {number} код_поселения · "
    "Ответить: /reply {number} текст"
)
DURATION_DAYS = "{days} дн."
DURATION_HOURS = "{hours} ч"
DURATION_MINUTES = "{minutes} мин"
DURATION_UNDER_A_MINUTE = "меньше минуты"

# --- Figures: /stats, `appeals-bot report` and `export` (SPEC §9) --------------------------
PLATFORM_TITLES = {
    "vk": "ВКонтакте",
    "ok": "Одноклассники",
    "tg": "Telegram",
    "max": "MAX",
    "console": "консоль",
}
RATING_NONE = "без оценки"
STATS_SUMMARY = "Жителей: {residents} · отвечено: {answered} · в срок: {on_time} ({share})"
STATS_ANSWER_TIME = "Время до первого ответа: медиана {median}, 90 % — до {p90}"
STATS_RATINGS = "Оценки: решён {resolved} · не решён {unresolved} · без оценки {unrated}"
STATS_BY_PLATFORM = "По мессенджерам:"
STATS_BY_RATING = "По оценкам:"
STATS_SHARE_LINE = "  {title}: {count} ({share})"
NOTHING = "—"
REPORT_TITLE = "{name}: обращения граждан с {start} по {end}"
REPORT_RECEIVED = "За период поступило {received} от {residents}."
REPORT_NOTHING = "За период обращений не поступало."
REPORT_TOPICS = "Основные темы: {topics}."
REPORT_TOPIC = "{title} ({share})"
REPORT_ON_TIME = (
    "В установленный срок ({hours} ч) дан ответ на {on_time} — {share} поступивших; "
    "всего отвечено на {answered}."
)
REPORT_ANSWER_TIME = (
    "Половина отвеченных обращений получила первый ответ не позже чем через {median}, "
    "90 % — не позже чем через {p90}."
)
REPORT_RATINGS = (
    "Оценки жителей: «вопрос решён» — {resolved}, «не решён» — {unresolved}, "
    "без оценки — {unrated}."
)
APPEAL_FORMS = ("обращение", "обращения", "обращений")
RESIDENT_GENITIVE_FORMS = ("жителя", "жителей", "жителей")
# The CSV report: one figure a row.
REPORT_CSV_HEADER = ("раздел", "код", "название", "значение")
REPORT_CSV_SECTIONS = {
    "period": "период",
    "summary": "итоги",
    "category": "темы",
    "settlement": "поселения",
    "platform": "мессенджеры",
    "status": "статусы",
    "rating": "оценки",
    "community": "сообщества",
    "comments": "комментарии",
    "comment_community": "комментарии по сообществам",
}
REPORT_CSV_COMMENTS = {
    "received": "поступило комментариев",
    "answered": "отвечено",
    "on_time": "отвечено в срок",
}
REPORT_CSV_SUMMARY = {
    "from": "с",
    "to": "по",
    "timezone": "часовой пояс",
    "received": "поступило обращений",
    "residents": "жителей",
    "answered": "отвечено",
    "on_time": "отвечено в срок",
    "on_time_percent": "отвечено в срок, % поступивших",
    "answer_within_hours": "срок ответа, ч",
    "median_answer_seconds": "медиана времени до первого ответа, с",
    "p90_answer_seconds": "90-й процентиль времени до первого ответа, с",
}
# The register (`appeals-bot export`): one appeal a row; times in bot.timezone.
REGISTER_HEADER = (
    "Номер",
    "Поступило",
    "Статус",
    "Тема",
    "Поселение",
    "Мессенджер",
    "Текст",
    "Адрес",
    "Широта",
    "Долгота",
    "Фото",
    "Имя",
    "Телефон",
    "Срок ответа",
    "Первый ответ",
    "Ответ в срок",
    "Оценка",
    "Последний ответ",
    "Сообщество",
    "Вид",
)
YES = "да"
NO = "нет"
# The chart (`appeals-bot report --chart FILE`).
CHART_TITLE = "Обращения по месяцам, {start} — {end}"
CHART_APPEALS = "Обращений"
CHART_ON_TIME = "Отвечено в срок, %"
MONTHS_SHORT = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")

# --- issue 14: CLI and demo ---
# /stats with a date the calendar of reports does not cover (handlers/figures/report.py).
DATE_OUT_OF_RANGE = "Дата «{text}» вне допустимого диапазона: с {first} по {last}."
# The register's «Ответ в срок» for an appeal not answered yet whose deadline is ahead.
REGISTER_NOT_DUE_YET = "срок не истёк"
# The demo's `/as admin:<code>` with a code no settlement has.
DEMO_AS_UNKNOWN_SETTLEMENT = (
    "Поселения «{name}» нет, вы по-прежнему пишете как {who}. Коды поселений: {codes}"
)
# The demo's `/photo` with something other than a web link.
DEMO_PHOTO_BAD = (
    "Фото прикрепляется ссылкой http:// или https:// не длиннее {limit} символов, "
    "например: /photo https://example.ru/yama.jpg"
)

# --- Every door of the community: settlement communities and comments (SPEC §14) ------------
# The greeting of a settlement's own community (or of a deep link naming a settlement).
GREETING_SETTLEMENT = (
    "Здравствуйте! Это канал обратной связи: {bot_name}, населённый пункт {settlement}.\n"
    "Здесь можно сообщить о проблеме или задать вопрос — ответ придёт в этот же чат "
    "в течение {hours} ч.\n\nВыберите, что вы хотите сделать."
)
INTAKE_GREETING_SETTLEMENT = (
    "Здравствуйте! Это канал обратной связи: {bot_name}, населённый пункт {settlement}. "
    "Ответ на обращение придёт в этот же чат в течение {hours} ч."
)
INTAKE_OFFER_SETTLEMENT = (
    "Подать обращение с этим текстом? Нажмите «Подать обращение»: текст станет описанием, "
    "останется выбрать тему. Можно дописать подробности следующим сообщением — они "
    "добавятся к тексту."
)
# The confirmation's button that goes back to the settlement step the community skipped.
CHANGE_SETTLEMENT = "Изменить населённый пункт"

# A comment item as staff read it: titles (the card's first line) by the appeal's title.
CARD_COMMENT_NEW = "Комментарий под постом №{number}"
CARD_COMMENT_SHOW = "Комментарий №{number}"
CARD_COMMENT_REASSIGNED = "Комментарий №{number} передан вашему поселению"
COMMENT_TITLES = {
    CARD_NEW: CARD_COMMENT_NEW,
    CARD_SHOW: CARD_COMMENT_SHOW,
    CARD_REASSIGNED: CARD_COMMENT_REASSIGNED,
}
CARD_COMMENT_LINES = (
    "Сообщество: {community}\nНаселённый пункт: {settlement}\nТекст: {text}\n"
    "Автор: {author}\nКомментарий: {link}"
)
CARD_COMMENT_DELETED = "Комментарий удалён."
CARD_COMMENT_NO_SETTLEMENT = "не указан"
# The one line that warns before a public answer (SPEC §14).
CARD_COMMENT_PUBLIC = (
    "⚠ Ответ публикуется под комментарием открыто: не пишите в нём персональных данных."
)
CARD_COMMENT_HOW_TO_ANSWER = (
    "Ответить публично: /reply {number} текст · Пригласить в личные сообщения: /invite {number}\n"
    "Взять в работу: /take {number} · Закрыть: /close {number} · Отклонить: /reject {number} "
    "причина"
)
COMMENT_CATEGORY = "Комментарий под постом"
COMMENT_NO_ADMIN = (
    "У сообщества нет своего поселения или в поселении нет администратора — комментарий "
    "направлен модераторам."
)
# What is posted under the comment.
COMMENT_ANSWER = "{text}\n\n{organisation}"
COMMENT_INVITATION = (
    "Здравствуйте! Чтобы мы разобрались подробнее, напишите нам, пожалуйста, в личные "
    "сообщения: {url} — там можно подать обращение, ответ придёт в течение {hours} ч."
)
# What staff are told.
COMMENT_REPLIED = "Ответ опубликован под комментарием №{number}."
COMMENT_INVITED = "Под комментарием №{number} опубликовано приглашение написать в личные сообщения."
INVITE_NOT_A_COMMENT = (
    "№{number} — обращение, а не комментарий: житель уже пишет в личные сообщения. "
    "Ответить: /reply {number} текст"
)
INVITE_NO_LINK = (
    "Для этого сообщества не задан адрес личных сообщений (invite_url в настройках), "
    "пригласить нельзя. Ответить публично: /reply {number} текст"
)
ASK_NOT_FOR_COMMENT = (
    "Комментарий №{number} — публичный: вопрос автору можно задать только открыто "
    "(/reply {number} текст) или пригласить его в личные сообщения (/invite {number})."
)
COMMENT_DELETED_CANNOT_ANSWER = (
    "Комментарий №{number} удалён: ответить под ним нельзя. Закрыть: /close {number}"
)
COMMENT_TAKEN = "Комментарий №{number} взят в работу."
COMMENT_CLOSED = "Комментарий №{number} закрыт."
COMMENT_REJECTED = "Комментарий №{number} отклонён (без ответа автору)."
COMMENT_ASSIGNED = "Комментарий №{number} передан: {settlement}. Администраторы уведомлены."
COMMENT_REGISTERED = (
    "Комментарий №{number} зарегистрирован вручную; администраторы поселения уведомлены."
)
COMMENT_BAD_LINK = "Ссылка на комментарий пишется целиком: https://…"
COMMENT_POST_BY_HAND = (
    "Ответ на комментарий №{number} записан. Бот не может опубликовать его сам — "
    "разместите этот текст под комментарием: {link}\n\n{text}"
)
COMMENT_DELETED_TO_STAFF = "Комментарий №{number} удалён под постом; он закрыт."
COMMENT_DELETED_NOTE = "комментарий удалён"
COMMENT_FLOOD_TO_MODERATORS = (
    "Слишком много комментариев подряд от {author} ({identity}) в сообществе {community}: "
    "следующие несколько минут его комментарии не регистрируются. "
    "Заблокировать: /ban {identity} причина"
)
THREAD_COMMENT_KINDS = {
    "created": "комментарий",
    "edited": "комментарий изменён",
    "invite": "приглашение",
}
THREAD_AUTHOR = "автор"
COMMENT_AUTHOR_UNKNOWN = "не указан"
# Registers: what an item is, and how the community is named.
KIND_TITLES = {"appeal": "обращение", "comment": "комментарий"}
COMMUNITY_MAIN = "основное сообщество"
STATS_BY_COMMUNITY = "По сообществам:"
STATS_COMMENTS = (
    "Комментарии под постами: {received} · отвечено: {answered} · в срок: {on_time} ({share})"
)
STATS_COMMENTS_BY_COMMUNITY = "Комментарии по сообществам:"
REPORT_COMMENTS = (
    "Комментарии под постами сообществ учтены отдельно: поступило {received}, ответ дан "
    "на {answered}, в срок — на {on_time}."
)
COMMENT_FORMS = ("комментарий", "комментария", "комментариев")

# --- the web dashboard (SPEC §16) ------------------------------------------------------------

WEB_LINK = (
    "Ссылка для входа в веб-панель (действует {minutes} минут, открывается один раз, "
    "никому её не пересылайте):\n{url}"
)
WEB_OFF = "Веб-панель не включена в настройках ([dashboard] enabled)."
WEB_TOO_MANY = "Слишком много ссылок для входа за последние {minutes} минут. Попробуйте позже."
# Labels of the dashboard's pages, by key (templates under bot/dashboard/templates).
DASHBOARD = {
    "title": "Обращения — панель сотрудника",
    "queue": "Очередь",
    "figures": "Цифры",
    "export": "Выгрузка CSV",
    "logout": "Выйти",
    "signed_in_as": "Вы вошли как",
    "login_title": "Вход в панель",
    "login_button": "Войти",
    "login_hint": "Нажмите «Войти», чтобы открыть панель на этом устройстве.",
    "login_invalid": (
        "Ссылка недействительна: она уже использована или устарела. "
        "Отправьте боту /web, чтобы получить новую."
    ),
    "signed_out": "Вы вышли. Чтобы войти снова, отправьте боту /web.",
    "no_session": "Войдите по ссылке из мессенджера: отправьте боту /web.",
    "not_found": "Не найдено среди обращений, доступных вам.",
    "forbidden": "Доступно только модераторам.",
    "csrf": "Форма устарела или отправлена не отсюда. Обновите страницу и попробуйте снова.",
    "too_many": "Слишком много попыток входа. Подождите минуту.",
    "filter": "Показать",
    "status": "Статус",
    "settlement": "Поселение",
    "category": "Категория",
    "messenger": "Мессенджер",
    "overdue": "Только просроченные",
    "search": "Номер или текст",
    "any": "Все",
    "open": "Ожидают ответа",
    "number": "№",
    "deadline": "Срок",
    "text": "Текст",
    "empty": "Обращений нет.",
    "next": "Дальше →",
    "first": "← В начало",
    "appeal": "Обращение №{number}",
    "created": "Поступило",
    "place": "Место",
    "contact": "Контакт",
    "photos": "Фото",
    "thread": "Переписка",
    "actions": "Действия",
    "take": "Взять в работу",
    "reply": "Ответить жителю",
    "ask": "Задать вопрос",
    "close": "Закрыть",
    "assign": "Передать поселению",
    "reject": "Отклонить",
    "comment": "Комментарий (необязательно)",
    "reason": "Причина",
    "period_from": "С",
    "period_to": "По",
    "show": "Показать",
    "received": "Поступило обращений",
    "residents": "Жителей",
    "answered": "С ответом",
    "on_time": "Отвечено в срок",
    "median": "Медиана времени до ответа",
    "p90": "90-й процентиль",
    "resolved": "Оценки «решён» / «не решён»",
    "by_category": "По категориям",
    "by_settlement": "По поселениям",
    "by_platform": "По мессенджерам",
    "by_status": "По статусам",
    "per_month": "По месяцам",
    "bad_period": "Неверный период: даты ГГГГ-ММ-ДД, «С» не позже «По».",
    "empty_text": "Текст не может быть пустым.",
}
