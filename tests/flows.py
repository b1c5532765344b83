"""Common walks through the resident dialogue, for tests that need an appeal to exist."""

from __future__ import annotations

from tests.conftest import Person

DESCRIPTION = "Яма на дороге возле дома культуры, глубокая"


async def to_description(
    person: Person, category: str = "Дороги", settlement: str = "Сергино"
) -> None:
    await person.say("Начать")
    await person.press("Подать обращение")
    if "Согласен" in person.labels:
        await person.press("Согласен")
    await person.press(category)
    await person.press(settlement)


async def file_appeal(
    person: Person, description: str = DESCRIPTION, *, settlement: str = "Сергино"
) -> int:
    """File a complete appeal with place, photos, name and phone skipped; its number."""
    await to_description(person, settlement=settlement)
    await person.say(description)
    await person.press("Пропустить")  # place
    await person.press("Пропустить")  # photos
    await person.press("Пропустить")  # name
    await person.press("Пропустить")  # phone
    await person.press("Отправить")
    return int(person.text.split("№")[1].split()[0])
