"""The lecture's figures drawn by code: each draws, and every piece of course_utils code it names exists."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_utils import attention, diagrams, layers, models  # noqa: E402
from course_utils.models.encoder_decoder import DecoderLayer  # noqa: E402

FIGURES = [lambda: diagrams.transformer_layer(norm) for norm in diagrams.PLACEMENTS] + [
    diagrams.encoder_stack, diagrams.fine_tuning, diagrams.decoder, diagrams.encoder_decoder, diagrams.decoder_layer]


def namespace() -> dict:
    """What a diagram's code labels may name: course_utils' classes and functions, and small instances of the
    models whose attributes the labels point at (Decoder.tok, DecoderLayer.cross_attn...)."""
    names = {n: getattr(m, n) for m in (attention, layers, models) for n in dir(m) if not n.startswith("_")}
    encoder = models.Encoder(10, d_model=8, n_heads=2, n_layers=1, max_len=8)
    names |= {"Decoder": models.Decoder(10, d_model=8, n_heads=2, n_layers=1, max_len=8),
              "EncoderDecoder": models.EncoderDecoder(10, d_model=8, n_heads=2, max_len=8),
              "DecoderLayer": DecoderLayer(8, 2),
              "EncoderForPreTraining": models.EncoderForPreTraining(encoder),
              "EncoderForClassification": models.EncoderForClassification(encoder, 3)}
    return names


@pytest.mark.parametrize("draw", FIGURES, ids=lambda f: getattr(f, "__name__", "transformer_layer"))
def test_every_code_name_on_a_figure_exists(draw):
    fig, names = draw(), namespace()
    assert fig.course_code, "the figure names no code"
    for label in fig.course_code:
        code = re.sub(r"\(.*?\)", "", label).split(":")[0]  # 'DecoderLayer: causal + cross', 'f(z, context=h)'
        for part in code.split(","):  # 'Decoder.tok, Decoder.pos'
            head, *rest = part.strip().split(".")
            obj = names[head]
            for attr in rest:
                obj = getattr(obj, attr)
            assert obj is not None, label
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # white: the same in the book's light and dark modes
    plt.close(fig)


def test_figure_1_shows_each_placement_of_the_layer_norm():
    texts = {}
    for norm in diagrams.PLACEMENTS:
        fig = diagrams.transformer_layer(norm)
        texts[norm] = [t.get_text() for t in fig.axes[0].texts]
        plt.close(fig)
    assert texts["lecture"].count("LayerNorm(affine=False)") == 2  # eq. (3) has no gain and bias
    for norm in diagrams.PLACEMENTS:
        assert f'TransformerLayer(norm="{norm}")' in texts[norm]
        assert texts[norm].count("LayerNorm, eq. (3)") == 2 and texts[norm].count("+") == 2  # two sub-layers
    with pytest.raises(ValueError, match="norm must be one of"):
        diagrams.transformer_layer("sandwich")
