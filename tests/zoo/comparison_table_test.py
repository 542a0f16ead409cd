"""The README's binarized MNIST comparison table (issue 21 part 5), rendered
by `zoo.render_tables` from the presets' metadata and the recipes'
published figures; presets not trained yet are marked, never filled in."""

from keras_vae import presets
from zoo import recipes, render_tables
from zoo.rechecks import repository_presets


def _cells(table, start):
    """The cells of the first row of `table` that starts with `start`."""
    row = next(line for line in table.splitlines() if line.startswith(f"| {start}"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def hvae_metadata():
    """The entries the runner writes for a HierarchicalVAE preset (made-up
    figures, distinct so the test sees each one land in its cell)."""
    return {
        "dataset": {"name": "binarized_mnist"},
        "metrics": {
            "test_nll": 80.4567,
            "test_nll_stderr": 0.1234,
            "test_nll_importance_samples": 1000,
            "test_nll_images": 10000,
            "test_elbo": -84.321,
            "test_kl_per_group": [3.456, 7.891, 12.5],
            "active_units_per_group": [40, 120, 900],
            "latent_shapes": [[7, 7, 8], [7, 7, 8], [14, 14, 8]],
            "active_units": 1060,
            "latent_dim": 2352,
        },
        "parameter_count": 171234,
        "train_seconds": 36000.0,
        "epochs_completed": 123,
        "trained_on_backend": "jax",
        "hardware": "one test GPU",
    }


def test_comparison_table_renders_trained_rows_and_marks_missing_ones():
    vae = presets.load_metadata("vae_binarized_mnist")
    table = render_tables.binarized_mnist_table(
        {
            "vae_binarized_mnist": vae,
            "iaf_vae_binarized_mnist": None,
            "iwae_vae_binarized_mnist": None,
            "hvae_binarized_mnist": hvae_metadata(),
        }
    )
    header = table.splitlines()[0]
    assert header.count("|") - 1 == 9 and "test NLL (nats)" in header
    m = vae["metrics"]
    cells = _cells(table, "VAE (`vae_binarized_mnist`)")
    assert cells[1] == f"**{m['test_nll']:.2f}** ± {m['test_nll_stderr']:.2f}"
    assert cells[2] == "static binarization, k = 1,000, 10,000 test images"
    assert cells[3] == f"{m['test_elbo']:.2f}"
    assert cells[5] == f"{m['active_units']} / 32"
    assert cells[6] == f"{vae['parameter_count'] / 1e6:.2f}M"
    assert cells[8] == vae["hardware"]

    cells = _cells(table, "HierarchicalVAE (`hvae_binarized_mnist`)")
    assert cells[1:4] == [
        "**80.46** ± 0.12",
        "static binarization, k = 1,000, 10,000 test images",
        "-84.32",
    ]
    assert cells[4] == "3.46 / 7.89 / 12.50"  # KL per group, top first
    assert cells[5] == "40 / 120 / 900 of 392 / 392 / 1568"
    assert cells[6:] == ["0.17M", "10.0 h, 123 epochs (jax)", "one test GPU"]

    # Not trained yet: said so, every other cell empty.
    for start in ("VAE + IAF (`iaf_vae", "IWAE, k = 5 in training (`iwae_vae"):
        cells = _cells(table, start)
        assert cells[1] == "not trained yet" and set(cells[2:]) == {""}

    # The published figures of the four recipes, binarization and k stated.
    cells = _cells(table, "published: Burda et al. 2016, VAE (1 stochastic layer, MLP")
    assert cells[1:3] == ["88.71", "static binarization, k = 5,000"]
    cells = _cells(table, "published: Tomczak & Welling 2018")
    assert cells[1:3] == ["81.09", "static binarization, k = 5,000"]
    cells = _cells(table, "published: Sønderby et al. 2016")
    assert cells[1:3] == ["81.74", "dynamic binarization, k = 5,000"]
    # vae_binarized_mnist's recipe quotes Burda's 86.76 without its
    # binarization; the iaf recipe's entry, which states it, stands for it.
    assert table.count("| 86.76 |") == 1
    assert "| 86.76 | dynamic binarization, k = 5,000 |" in table


def test_published_figures_parse_binarization_and_k():
    blocks = {
        "a": {
            "metric": "test NLL (nats)",
            "X et al. 2020, model A, static binarization, k=5000": 80.5,
            "X et al. 2020, model B": 90.0,
            "Y 2019, model C, k=50 training samples, dynamic binarization, k=1000": 85.0,
        },
        "b": {
            "X et al. 2020, model B, dynamic binarization, k=5000": 90.0,
            "X et al. 2020, model A, static binarization, k=5000": 80.5,
            "Z benchmark": 99.0,
        },
    }
    figures = render_tables.published_figures(["a", "b"], lambda n: {"published": blocks[n]})
    assert figures == [
        ("X et al. 2020, model A", "static binarization", "k = 5,000", 80.5),
        ("Y 2019, model C, k=50 training samples", "dynamic binarization", "k = 1,000", 85.0),
        ("X et al. 2020, model B", "dynamic binarization", "k = 5,000", 90.0),
        ("Z benchmark", "not stated", "not stated", 99.0),
    ]
    table = render_tables.binarized_mnist_table(
        {}, lambda name: {"published": blocks["b"]} if name == "hvae_binarized_mnist" else {}
    )
    assert "| published: Z benchmark | 99.00 | binarization and k not stated |" in table
    assert table.count("not trained yet") == 4


def test_rendered_tables_hold_the_comparison_of_the_trained_presets():
    # Built-in presets and the repository-only ones (zoo/preset_files).
    table = render_tables.tables()["binarized MNIST comparison"]
    trained_names = set(presets.registry()) | set(repository_presets())
    for name in recipes.names():
        if name.endswith("binarized_mnist"):
            trained = name in trained_names
            assert (f"`{name}`) | not trained yet |" in table) != trained, name
