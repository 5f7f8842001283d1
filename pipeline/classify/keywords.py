"""A keyword baseline: boolean queries in three languages, the way keyword alert services
(Google Alerts, Talkwalker, Meltwater) are set up by analysts. It exists to be beaten."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from pipeline.classify.base import LABELS, Document, Prediction

PRISON = [
    "prison",
    "prisons",
    "jail",
    "jails",
    "penitentiary",
    "inmate",
    "inmates",
    "cellblock",
    "cárcel",
    "carcel",
    "cárceles",
    "penal",
    "penitenciaría",
    "penitenciaria",
    "reclusos",
    "presos",
    "privados de libertad",
    "centro penitenciario",
    "centro de rehabilitación",
    "presídio",
    "presidio",
    "presídios",
    "penitenciária",
    "cadeia",
    "detentos",
    "presos",
    "unidade prisional",
    "sistema prisional",
    "complexo penitenciário",
]
GANG = [
    "gang",
    "gangs",
    "cartel",
    "mafia",
    "organized crime",
    "organised crime",
    "tren de aragua",
    "ms-13",
    "barrio 18",
    "pandilla",
    "pandillas",
    "pandilleros",
    "banda",
    "bandas",
    "pran",
    "pranes",
    "crimen organizado",
    "grupo delictivo",
    "los choneros",
    "los lobos",
    "facção",
    "facções",
    "faccao",
    "pcc",
    "comando vermelho",
    "crime organizado",
    "milícia",
    "milicia",
]
CONTROL = [
    "control",
    "controlled",
    "self-government",
    "run from",
    "ordered from",
    "extortion",
    "riot",
    "massacre",
    "hostage",
    "escape",
    "autogobierno",
    "control",
    "extorsión",
    "motín",
    "masacre",
    "rehenes",
    "fuga",
    "controle",
    "rebelião",
    "massacre",
    "reféns",
    "fuga",
    "extorsão",
    "ordens",
    "comandava",
    "dominio",
    "domínio",
    "celulares",
    "cellphones",
]
OPERATION = [
    "raid",
    "raids",
    "operation",
    "troops",
    "soldiers",
    "military",
    "state of emergency",
    "state of exception",
    "crackdown",
    "arrested",
    "arrests",
    "transfer",
    "transferred",
    "takeover",
    "intervention",
    "operativo",
    "operación",
    "militares",
    "intervención",
    "estado de excepción",
    "régimen de excepción",
    "requisa",
    "capturados",
    "detenidos",
    "traslado",
    "operação",
    "intervenção",
    "transferência",
    "presos",
    "mandados",
    "revista",
    "força nacional",
    "policiais",
    "polícia",
    "policía",
    "police",
    "army",
    "ejército",
    "exército",
]


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def _pattern(words: Sequence[str]) -> re.Pattern[str]:
    alts = sorted({_fold(w) for w in words}, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(a) for a in alts) + r")\b")


_P, _G, _C, _O = (_pattern(w) for w in (PRISON, GANG, CONTROL, OPERATION))


class KeywordBaseline:
    """gang_prison_control: PRISON AND GANG AND CONTROL;
    security_operation: GANG AND OPERATION, or PRISON AND (takeover words)."""

    model_version = "keyword-baseline-1"
    labels = LABELS

    def predict(self, docs: Sequence[Document], evidence: bool = True) -> list[Prediction]:
        out = []
        for d in docs:
            t = _fold(f"{d.title} {d.text}")
            p, g, c, o = (bool(x.search(t)) for x in (_P, _G, _C, _O))
            gpc = p and g and c
            sop = g and o
            scores = {"gang_prison_control": float(gpc), "security_operation": float(sop)}
            out.append(Prediction([k for k, v in scores.items() if v], scores, self.model_version))
        return out
