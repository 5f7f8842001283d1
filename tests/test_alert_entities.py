"""The offline extractor of prisons, gangs and countries shown in alerts and used by routing."""

from __future__ import annotations

import pytest

from pipeline.alerts.entities import extract


@pytest.mark.parametrize(
    ("text", "source_country", "facilities", "gangs", "countries"),
    [
        # Accent- and case-insensitive, in order of first mention.
        (
            "TREN DE ARAGUA controlaba el penal de TOCORON",
            None,
            ("Tocorón",),
            ("Tren de Aragua",),
            ("VE",),
        ),
        (
            "Motín en la Penitenciaria del Litoral entre los choneros y Los Lobos",
            "EC",
            ("Penitenciaría del Litoral",),
            ("Los Choneros", "Los Lobos"),
            ("EC",),
        ),
        (
            "Rebelião no Compaj: Família do Norte ataca o PCC",
            None,
            ("Compaj",),
            ("Família do Norte", "PCC"),
            ("BR",),
        ),
        (
            "Traslado al CECOT de pandilleros de la MS13 y del Barrio 18",
            None,
            ("CECOT",),
            ("MS-13", "Barrio 18"),
            ("SV",),
        ),
        # Ambiguous names need a prison word nearby.
        ("Masacre en la cárcel El Pozo de Ilama", None, ("El Pozo",), (), ("HN",)),
        ("Sacaron agua de el pozo del pueblo de Turi", None, (), (), ()),
        ("Requisa en la cárcel de Turi, en Cuenca", None, ("Turi",), (), ("EC",)),
        ("Tensión en el Litoral por las lluvias", None, (), (), ()),
        # Word boundaries: "Rodeo II" is not "Rodeo I"; "PCC" inside a word is not the PCC.
        ("Fuga del Rodeo II", None, (), (), ()),
        ("El grupo EPCC anunció", None, (), (), ()),
        # The source's country comes after the places named, before gangs' home countries;
        # regions are not countries.
        (
            "Operación contra el CJNG en la cárcel de Puente Grande",
            "US",
            ("Puente Grande",),
            ("CJNG",),
            ("MX", "US"),
        ),
        (
            "Capturan a miembros del Tren de Aragua en Santiago",
            "CL",
            (),
            ("Tren de Aragua",),
            ("CL", "VE"),
        ),
        ("Capturan a miembros del Tren de Aragua", "LatAm", (), ("Tren de Aragua",), ("VE",)),
    ],
)
def test_extract(
    text: str,
    source_country: str | None,
    facilities: tuple[str, ...],
    gangs: tuple[str, ...],
    countries: tuple[str, ...],
) -> None:
    found = extract(text, source_country)
    assert (found.facilities, found.gangs, found.countries) == (facilities, gangs, countries)
