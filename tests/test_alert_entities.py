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
        # Where the story happens beats the gang's home country: a country the text names,
        # or failing that a nationality it uses, comes before the source's and the gang's.
        (
            "Carabineros detienen a 12 miembros del Tren de Aragua en Santiago de Chile",
            None,
            (),
            ("Tren de Aragua",),
            ("CL", "VE"),
        ),
        (
            "Fiscalía chilena imputa a líderes del Tren de Aragua",
            "VE",
            (),
            ("Tren de Aragua",),
            ("CL", "VE"),
        ),
        (
            "Capturan en Cúcuta, Colombia, a cabecillas del Tren de Aragua",
            "VE",
            (),
            ("Tren de Aragua",),
            ("CO", "VE"),
        ),
        (
            "Colombian police dismantle a Tren de Aragua cell in Bogotá",
            None,
            (),
            ("Tren de Aragua",),
            ("CO", "VE"),
        ),
        # MS-13 has no single home country: only the place named says where.
        (
            "Federal prosecutors in the United States charge 20 MS-13 leaders",
            None,
            (),
            ("MS-13",),
            ("US",),
        ),
        (
            "U.S. agents and Salvadoran police arrest MS-13 members",
            "SV",
            (),
            ("MS-13",),
            ("US", "SV"),
        ),
        ("Deportan a pandilleros de la MS-13", None, (), ("MS-13",), ()),
        # Only the gang is named: its home country is the last resort.
        ("Tren de Aragua expands its extortion business", None, (), ("Tren de Aragua",), ("VE",)),
        # A prison named still comes first; the countries the text names follow in order.
        (
            "Presos trasladados desde Chile y Perú al penal de Tocorón",
            None,
            ("Tocorón",),
            (),
            ("VE", "CL", "PE"),
        ),
        # Names that are also ordinary words count only capitalised; "New Mexico" is a state.
        ("Salsa de chile y peru assado para la cena", None, (), (), ()),
        ("Police in New Mexico arrest MS-13 members", None, (), ("MS-13",), ()),
        ("La banda usa armas de guerra", None, (), (), ()),
        (
            "A polícia brasileira prende membros do Tren de Aragua",
            None,
            (),
            ("Tren de Aragua",),
            ("BR", "VE"),
        ),
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
