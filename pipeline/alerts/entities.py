"""Offline extraction of prisons, gangs and countries named in a story.

Small hand-written gazetteers, matched accent- and case-insensitively on word boundaries.
Names that are also ordinary words or places ("El Pozo", "La Roca", "Turi", "Bangu") only
count when a prison word stands near them, so "el pozo de agua" names no prison.

A story's country comes from what it says about where it happens, not from who is in it:
the Tren de Aragua is Venezuelan, but a raid on it in Santiago is a Chilean story. So a named
prison's country comes first, then countries the text names, then nationalities it uses
("la policía chilena"), then the source's own country, and a gang's home country last.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

COUNTRY_NAMES = {
    "AR": "Argentina",
    "BO": "Bolivia",
    "BR": "Brazil",
    "CL": "Chile",
    "CO": "Colombia",
    "CR": "Costa Rica",
    "EC": "Ecuador",
    "GT": "Guatemala",
    "HN": "Honduras",
    "MX": "Mexico",
    "PA": "Panama",
    "PE": "Peru",
    "PY": "Paraguay",
    "SV": "El Salvador",
    "US": "United States",
    "VE": "Venezuela",
}


@dataclass(frozen=True)
class CountryTerms:
    names: tuple[str, ...]  # the country itself, in en/es/pt
    demonyms: tuple[str, ...] = ()  # nationality adjectives and nouns, every inflection
    # Names that are also ordinary lowercase words ("chile" the pepper, "peru" the turkey in
    # Portuguese, "ecuador" the equator in Spanish) count only when written capitalised.
    capitalised: tuple[str, ...] = ()
    # Acronyms that are also words ("usa" is "uses" in es/pt) count only in capitals.
    acronyms: tuple[str, ...] = ()
    # Names inside another place's name: "New Mexico" is a US state.
    not_after: tuple[str, ...] = ()


def _o(*stems: str) -> tuple[str, ...]:
    """Spanish/Portuguese adjectives in -o: every gender and number."""
    return tuple(stem + end for stem in stems for end in ("o", "a", "os", "as"))


def _s(*words: str) -> tuple[str, ...]:
    """Words whose plural only adds -s (English demonyms, -e adjectives)."""
    return tuple(w + end for w in words for end in ("", "s"))


# "American" and "americano" are left out: they as often mean Latin American or the whole
# continent. "Salvador" alone is left out: it is also a Brazilian city.
COUNTRY_TERMS: dict[str, CountryTerms] = {
    "AR": CountryTerms(("Argentina",), (*_o("argentin"), *_s("Argentinian", "Argentine"))),
    "BO": CountryTerms(("Bolivia",), (*_o("bolivian"), *_s("Bolivian"))),
    "BR": CountryTerms(("Brazil", "Brasil"), (*_o("brasileñ", "brasileir"), *_s("Brazilian"))),
    "CL": CountryTerms(("Chile",), (*_o("chilen"), *_s("Chilean")), capitalised=("Chile",)),
    "CO": CountryTerms(("Colombia",), (*_o("colombian"), *_s("Colombian"))),
    "CR": CountryTerms(
        ("Costa Rica",), (*_s("costarricense"), *_o("costarriquenh"), *_s("Costa Rican"))
    ),
    "EC": CountryTerms(
        ("Ecuador", "Equador"),
        (*_o("ecuatorian", "equatorian"), *_s("Ecuadorian", "Ecuadorean")),
        capitalised=("Ecuador", "Equador"),
    ),
    "GT": CountryTerms(("Guatemala",), (*_o("guatemaltec"), *_s("Guatemalan"))),
    "HN": CountryTerms(
        ("Honduras",), (*_o("hondureñ", "hondurenh"), *_s("Honduran")), capitalised=("Honduras",)
    ),
    "MX": CountryTerms(
        ("Mexico", "Méjico"),
        (*_o("mexican"), *_s("Mexican")),
        not_after=("new ", "nuevo ", "novo ", "gulf of ", "golfo de ", "golfo do "),
    ),
    "PA": CountryTerms(
        ("Panama", "Panamá"), (*_o("panameñ", "panamenh"), *_s("Panamanian")), ("Panama",)
    ),
    "PE": CountryTerms(("Peru", "Perú"), (*_o("peruan"), *_s("Peruvian")), ("Peru",)),
    "PY": CountryTerms(("Paraguay", "Paraguai"), (*_o("paraguay", "paraguai"), *_s("Paraguayan"))),
    "SV": CountryTerms(
        ("El Salvador",),
        (*_o("salvadoreñ", "salvadorenh"), *_s("Salvadoran", "Salvadorean")),
        capitalised=("El Salvador",),
    ),
    "US": CountryTerms(
        ("United States", "Estados Unidos", "EE.UU.", "EE. UU.", "U.S.", "USA", "EEUU", "EUA"),
        (*_s("estadounidense", "estadunidense"), *_o("norteamerican", "norte-american")),
        acronyms=("USA", "EEUU", "EUA"),
    ),
    "VE": CountryTerms(("Venezuela",), (*_o("venezolan", "venezuelan"), *_s("Venezuelan"))),
}


@dataclass(frozen=True)
class Facility:
    name: str
    country: str
    aliases: tuple[str, ...] = ()
    needs_context: bool = False  # every name of it needs a prison word nearby
    context_aliases: tuple[str, ...] = ()  # only these need one


@dataclass(frozen=True)
class Gang:
    name: str
    aliases: tuple[str, ...] = ()
    country: str | None = None  # only where the gang is tied to one country


FACILITIES: tuple[Facility, ...] = (
    # Venezuela
    Facility("Tocorón", "VE", ("Centro Penitenciario de Aragua",)),
    Facility("Tocuyito", "VE", ("Rodeo de Tocuyito",)),
    Facility("Rodeo I", "VE", ("El Rodeo I",)),
    Facility("Yare", "VE", ("Yare I", "Yare II", "Yare III"), needs_context=True),
    Facility("Puente Ayala", "VE"),
    # Ecuador
    Facility(
        "Penitenciaría del Litoral",
        "EC",
        ("Litoral penitentiary", "carcel del Litoral", "Penitenciaria Litoral"),
        context_aliases=("Litoral",),
    ),
    Facility("Turi", "EC", (), needs_context=True),
    Facility("Latacunga", "EC", ("Cotopaxi prison",), needs_context=True),
    Facility("Regional 8", "EC", ("Regional Guayas", "Cárcel Regional"), needs_context=True),
    Facility("La Roca", "EC", (), needs_context=True),
    # El Salvador
    Facility("CECOT", "SV", ("Centro de Confinamiento del Terrorismo",)),
    Facility("Mariona", "SV", ("La Esperanza",), needs_context=True),
    Facility("Izalco", "SV", (), needs_context=True),
    # Honduras / Guatemala
    Facility("Támara", "HN", ("Tamara women's prison", "PNFAS"), needs_context=True),
    Facility("El Pozo", "HN", ("El Pozo I", "El Pozo II"), needs_context=True),
    Facility("Renovación I", "GT", ("Renovacion 1",)),
    Facility("Fraijanes", "GT", ("Fraijanes I", "Fraijanes II"), needs_context=True),
    Facility("El Infiernito", "GT", (), needs_context=True),
    # Colombia / Peru / Paraguay / Bolivia
    Facility("La Picota", "CO", ("Picota",), needs_context=True),
    Facility("Bellavista", "CO", (), needs_context=True),
    Facility("La Modelo", "CO", ("Cárcel Modelo",), needs_context=True),
    Facility("Lurigancho", "PE", ("San Juan de Lurigancho",), needs_context=True),
    Facility("Tacumbú", "PY"),
    Facility("Palmasola", "BO"),
    # Mexico
    Facility("Puente Grande", "MX"),
    Facility("Altiplano", "MX", ("El Altiplano",), needs_context=True),
    Facility("Cereso de Ciudad Juárez", "MX", ("Cereso 3",)),
    # Brazil
    Facility("Alcaçuz", "BR"),
    Facility("Compaj", "BR", ("Complexo Penitenciário Anísio Jobim", "Anisio Jobim")),
    Facility("Pedrinhas", "BR"),
    Facility("Bangu", "BR", ("Complexo de Gericinó", "Bangu 1"), needs_context=True),
    Facility("Papuda", "BR"),
    Facility("Mossoró", "BR", ("Penitenciária Federal de Mossoró",), needs_context=True),
    Facility("Catanduvas", "BR", (), needs_context=True),
    Facility("Carandiru", "BR"),
)

GANGS: tuple[Gang, ...] = (
    Gang("Tren de Aragua", (), "VE"),
    Gang("Tren del Llano", (), "VE"),
    Gang("Los Choneros", ("Choneros",), "EC"),
    Gang("Los Lobos", (), "EC"),
    Gang("Los Tiguerones", ("Tiguerones",), "EC"),
    Gang("Chone Killers", (), "EC"),
    Gang("Los Lagartos", (), "EC"),
    Gang("MS-13", ("MS13", "MS 13", "Mara Salvatrucha")),
    Gang("Barrio 18", ("Mara 18", "Calle 18", "18th Street gang", "Barrio Dieciocho")),
    Gang("PCC", ("Primeiro Comando da Capital",), "BR"),
    Gang("Comando Vermelho", (), "BR"),
    Gang("Família do Norte", ("FDN",), "BR"),
    Gang("Sindicato do Crime", (), "BR"),
    Gang("Bonde do Maluco", (), "BR"),
    Gang("Clan del Golfo", ("Autodefensas Gaitanistas", "Gulf Clan"), "CO"),
    Gang(
        "CJNG",
        ("Cártel de Jalisco Nueva Generación", "Jalisco cartel", "Jalisco New Generation"),
    ),
    Gang("Sinaloa cartel", ("Cártel de Sinaloa", "Cartel de Sinaloa", "Sinaloa Cartel")),
    Gang("Los Pulpos", (), "PE"),
    Gang("Rotela clan", ("Clan Rotela",), "PY"),
)

# Words that make an ambiguous place name a prison ("cárcel de Turi", "Bangu prison").
_PRISON_WORDS = (
    "carcel",
    "carceles",
    "penal",
    "penitenciaria",
    "penitenciario",
    "penitentiary",
    "prison",
    "prisao",
    "presidio",
    "prision",
    "reclusorio",
    "centro de rehabilitacion",
    "centro de privacion",
    "complexo",
    "jail",
    "cadeia",
    "unidade prisional",
    "cdp",
    "crs",
    "cereso",
    "granja penal",
)
_CONTEXT_CHARS = 60


def fold(text: str) -> str:
    """Lowercase without accents: 'Tocorón' and 'TOCORON' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alts = sorted({re.escape(fold(n)) for n in names}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)")


@lru_cache(maxsize=1)
def _compiled() -> tuple[
    list[tuple[Facility, re.Pattern[str], bool]],
    list[tuple[Gang, re.Pattern[str]]],
    re.Pattern[str],
]:
    fac: list[tuple[Facility, re.Pattern[str], bool]] = []
    for f in FACILITIES:
        fac.append((f, _pattern((f.name, *f.aliases)), f.needs_context))
        if f.context_aliases:
            fac.append((f, _pattern(f.context_aliases), True))
    gangs = [(g, _pattern((g.name, *g.aliases))) for g in GANGS]
    return fac, gangs, _pattern(_PRISON_WORDS)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _country_pattern(names: tuple[str, ...], not_after: tuple[str, ...]) -> re.Pattern[str]:
    # Matched on accent-stripped text that keeps its case, so capitalisation can be checked.
    alts = sorted({re.escape(_strip_accents(n)) for n in names}, key=len, reverse=True)
    # "U.S." ends in a dot, which is no word character: (?<!\w)/(?!\w) still bound it.
    guards = "".join(f"(?<!{re.escape(p)})" for p in not_after)
    return re.compile(r"(?<!\w)" + guards + r"(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1)
def _country_patterns() -> tuple[
    list[tuple[str, re.Pattern[str], frozenset[str], frozenset[str]]],
    list[tuple[str, re.Pattern[str]]],
]:
    names: list[tuple[str, re.Pattern[str], frozenset[str], frozenset[str]]] = []
    demonyms: list[tuple[str, re.Pattern[str]]] = []
    for code, t in COUNTRY_TERMS.items():
        capitalised = frozenset(fold(n) for n in t.capitalised)
        acronyms = frozenset(fold(n) for n in t.acronyms)
        names.append((code, _country_pattern(t.names, t.not_after), capitalised, acronyms))
        if t.demonyms:
            demonyms.append((code, _country_pattern(t.demonyms, ())))
    return names, demonyms


def _named_countries(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Countries the text names, and those whose nationality it uses, with the position of
    each one's first (acceptable) mention."""
    plain = _strip_accents(text)
    name_patterns, demonym_patterns = _country_patterns()
    named: list[tuple[int, str]] = []
    for code, pat, capitalised, acronyms in name_patterns:
        for m in pat.finditer(plain):
            word = m.group(0)
            key = fold(word)
            if key in capitalised and not word[0].isupper():
                continue
            if key in acronyms and word != word.upper():
                continue
            named.append((m.start(), code))
            break
    demonyms: list[tuple[int, str]] = []
    for code, pat in demonym_patterns:
        found = pat.search(plain)
        if found:
            demonyms.append((found.start(), code))
    return sorted(named), sorted(demonyms)


@dataclass(frozen=True)
class Entities:
    facilities: tuple[str, ...] = ()
    gangs: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # ISO 3166 codes, most specific first

    @property
    def country(self) -> str | None:
        return self.countries[0] if self.countries else None


def _first_position(pattern: re.Pattern[str], text: str, context: re.Pattern[str] | None) -> int:
    for m in pattern.finditer(text):
        if context is None:
            return m.start()
        window = text[max(0, m.start() - _CONTEXT_CHARS) : m.end() + _CONTEXT_CHARS]
        if context.search(window):
            return m.start()
    return -1


def extract(text: str, source_country: str | None = None) -> Entities:
    """Prisons and gangs named in `text`, in order of first mention, and the countries the
    story points to, most telling first: countries of the prisons it names, countries it
    names, nationalities it uses, the source's own country if it is an ISO code, and last
    the home countries of single-country gangs."""
    folded = fold(text)
    fac_patterns, gang_patterns, prison_words = _compiled()
    first_fac: dict[str, tuple[int, Facility]] = {}
    for fac, pat, needs_context in fac_patterns:
        pos = _first_position(pat, folded, prison_words if needs_context else None)
        if pos >= 0 and (fac.name not in first_fac or pos < first_fac[fac.name][0]):
            first_fac[fac.name] = (pos, fac)
    found_fac = list(first_fac.values())
    found_gangs: list[tuple[int, Gang]] = []
    for gang, pat in gang_patterns:
        pos = _first_position(pat, folded, None)
        if pos >= 0:
            found_gangs.append((pos, gang))
    found_fac.sort(key=lambda p: p[0])
    found_gangs.sort(key=lambda p: p[0])
    countries: list[str] = []
    src = (source_country or "").strip().upper()
    named, demonyms = _named_countries(text)
    candidates = [f.country for _, f in found_fac]
    candidates += [code for _, code in named]
    candidates += [code for _, code in demonyms]
    candidates += [src] if src in COUNTRY_NAMES else []
    candidates += [g.country for _, g in found_gangs if g.country]
    for c in candidates:
        if c not in countries:
            countries.append(c)
    return Entities(
        facilities=tuple(f.name for _, f in found_fac),
        gangs=tuple(g.name for _, g in found_gangs),
        countries=tuple(countries),
    )


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code.upper(), code)
