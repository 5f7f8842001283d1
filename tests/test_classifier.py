"""The real classifier: round trip, the three languages, edge-case texts, evidence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.classify.base import LABELS, Document
from pipeline.classify.model import ModelNotBuiltError, SentinelaClassifier

CASES = [
    # (lang, title, text, expected label set)
    (
        "en",
        "Venezuela retakes Tocorón prison from Tren de Aragua with 11,000 troops",
        "Security forces stormed the prison that the gang had run as its headquarters, with a pool, a zoo and a nightclub inside.",
        {"gang_prison_control", "security_operation"},
    ),
    (
        "es",
        "Los Choneros controlan pabellones de la Penitenciaría del Litoral",
        "Según el SNAI, los cabecillas de la banda dirigen extorsiones y sicariatos desde sus celdas con teléfonos satelitales.",
        {"gang_prison_control"},
    ),
    (
        "pt",
        "PF deflagra operação contra o PCC e cumpre 120 mandados de prisão em seis estados",
        "A operação mira o braço financeiro da facção; agentes prenderam 87 suspeitos e apreenderam armas e dinheiro.",
        {"security_operation"},
    ),
    (
        "en",
        "Premier League: Arsenal beat Chelsea 2-0 at the Emirates",
        "Goals in each half sent Arsenal top of the table on Sunday.",
        set(),
    ),
    (
        "es",
        "Congreso aprueba reforma para mejorar la alimentación en las cárceles",
        "La ley fija un presupuesto mínimo por recluso y obliga a contratar nutricionistas en cada centro penitenciario.",
        set(),
    ),
    (
        "pt",
        "Previsão do tempo: frente fria traz chuva para o Sul nesta semana",
        "Temperaturas devem cair até 8 graus em Porto Alegre, segundo o Inmet.",
        set(),
    ),
]


def test_three_languages(classifier) -> None:
    docs = [Document(str(i), t, x, lang) for i, (lang, t, x, _) in enumerate(CASES)]
    preds = classifier.predict(docs)
    for (lang, title, _, expected), p in zip(CASES, preds, strict=True):
        # Clear positives carry their label(s); clear negatives carry none.
        if expected:
            assert expected <= set(p.labels), (lang, title, p.scores)
        else:
            assert p.labels == [], (lang, title, p.scores)
        assert set(p.scores) == set(LABELS)
        for label in p.labels:
            assert p.evidence[label], "a fired label must come with its evidence sentence"


def test_empty_and_very_long_texts(classifier) -> None:
    long_text = "Inmates of the gang ran the prison. " * 3000
    preds = classifier.predict(
        [Document("e", "", ""), Document("l", "Long", long_text), Document("w", "   ", "\n\t ")]
    )
    assert len(preds) == 3
    assert preds[0].labels == [] and preds[2].labels == []
    assert preds[0].scores == {"gang_prison_control": 0.0, "security_operation": 0.0}
    assert "gang_prison_control" in preds[1].labels  # cut at 256 tokens, still classified
    assert all(0.0 <= s <= 1.0 for p in preds for s in p.scores.values())


def test_scores_do_not_depend_on_the_batch(classifier) -> None:
    # An item's score is its own: the same whether it is scored alone, with others, or in
    # another order (the int8 runtime of older models failed this by up to 0.6).
    docs = [Document(str(i), t, x, lang) for i, (lang, t, x, _) in enumerate(CASES)]
    together = classifier.predict_proba(docs)
    alone = np.vstack([classifier.predict_proba([d]) for d in docs])
    backwards = classifier.predict_proba(docs[::-1])[::-1]
    assert np.allclose(together, alone, atol=0.01)
    assert np.allclose(together, backwards, atol=0.01)
    assert [p.labels for p in classifier.predict(docs, evidence=False)] == [
        classifier.predict([d], evidence=False)[0].labels for d in docs
    ]


def test_save_load_round_trip(classifier, tmp_path: Path) -> None:
    out = classifier.save_pretrained(tmp_path / "copy")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["labels"] == list(LABELS)
    assert cfg["model_version"] == classifier.model_version
    again = SentinelaClassifier.from_pretrained(out)
    assert again.config == classifier.config
    docs = [Document(str(i), t, x, lang) for i, (lang, t, x, _) in enumerate(CASES)]
    assert np.allclose(again.predict_proba(docs), classifier.predict_proba(docs), atol=1e-6)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ModelNotBuiltError, match="make model"):
        SentinelaClassifier.from_pretrained(tmp_path)


def test_models_built_before_openvino_still_load(classifier, tmp_path: Path) -> None:
    """Model directories from before the OpenVINO runtime hold `encoder.onnx` and run on ONNX
    Runtime (SENTINELA_MODEL_DIR may point at one). Rebuild one from this model's fp32 encoder:
    it must load through that branch and agree with the served runtime."""
    from export_onnx import export_fp32

    from pipeline.classify.encoder import ENCODER_NAME, OPENVINO_NAME

    fp32_dir = classifier.directory / "fp32-encoder"
    assert (fp32_dir / "config.json").is_file(), "make model keeps the fp32 encoder"
    old = classifier.save_pretrained(tmp_path / "old")
    for name in (OPENVINO_NAME, OPENVINO_NAME.replace(".xml", ".bin")):
        (old / name).unlink()
    export_fp32(fp32_dir, old / ENCODER_NAME)

    legacy = SentinelaClassifier.from_pretrained(old)
    docs = [Document(str(i), t, x, lang) for i, (lang, t, x, _) in enumerate(CASES)]
    got = legacy.predict_proba(docs)
    assert legacy.encoder.runtime.startswith("onnxruntime")
    want = classifier.predict_proba(docs)
    assert np.abs(got - want).max() < 0.05
    assert [p.labels for p in legacy.predict(docs, evidence=False)] == [
        p.labels for p in classifier.predict(docs, evidence=False)
    ]
