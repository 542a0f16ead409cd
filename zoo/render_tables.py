"""Renders the README's result tables from the presets' metadata.

Usage:

    python -m zoo.render_tables            # prints every table
    python -m zoo.render_tables --check README.md

The tables are rendered from what each preset's `metadata.json` measured,
never typed by hand; `--check FILE` exits with status 1 when FILE does not
hold them exactly (tests/zoo/text_presets_test.py does the same).
"""

import argparse
import re
import sys
from pathlib import Path

from keras_vae import presets
from zoo import recipes
from zoo.rechecks import repository_presets

# The binarized MNIST comparison (issue 21): the same split and estimator,
# one row per preset in this order, then the recipes' published figures.
BINARIZED_MNIST_PRESETS = (
    ("vae_binarized_mnist", "VAE"),
    ("iaf_vae_binarized_mnist", "VAE + IAF"),
    ("iwae_vae_binarized_mnist", "IWAE"),
    ("hvae_binarized_mnist", "HierarchicalVAE"),
)


def results_table(vae, lm):
    """The README's Penn Treebank table, in Markdown, from two presets'
    metadata (`text_vae_ptb`'s and `lstm_lm_ptb`'s), rounded as printed in
    the README."""
    rows = [
        "| model | test PPL | NLL (nats) | ELBO | KL | MI | active units |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, metadata in (("LSTM LM", lm), ("LSTM VAE", vae)):
        m = metadata["metrics"]
        latent = ["", "", "", ""]  # a language model has no latent
        if "kl" in m:
            latent = [f"{m[k]:.2f}" for k in ("elbo", "kl", "mutual_information")]
            latent += [f"{m['active_units']} / {metadata['recipe']['model']['latent_dim']}"]
        rows.append(
            f"| {label} (`{metadata['name']}`) | {m['perplexity']:.2f} | "
            f"{m['nll']:.2f} | " + " | ".join(latent) + " |"
        )
    return "\n".join(rows) + "\n"


def sprites_table(beta, plain, indent="  "):
    """The README's disentanglement table, in Markdown, from the metadata of
    `beta_vae_sprites` and `vae_sprites` (indented to sit in a list item).
    The targets are those of the β-VAE's issue: MIG >= 0.25, FactorVAE
    score >= 0.75. The FactorVAE score is shown twice: by
    disentanglement_lib's protocol (every latent whose code has standard
    deviation >= 0.05 votes, collapsed ones included) and with the active
    latents only (variance > 0.01, `exclude_inactive=True`)."""
    rows = [
        "| model | MIG | FactorVAE score | FactorVAE, active latents only "
        "| DCI disentanglement | test ELBO (nats) | active latents |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, metadata in (("`beta_vae_sprites`", beta), ("`vae_sprites` (β = 1)", plain)):
        m = metadata["metrics"]
        latent_dim = metadata["recipe"]["architecture"]["latent_dim"]
        rows.append(
            f"| {label} | {m['mig']:.3f} | {m['factor_vae']:.3f} | "
            f"{m['factor_vae_active_only']:.3f} | {m['dci']:.3f} | "
            f"{m['test_elbo']:.1f} | {m['active_units']} / {latent_dim} |"
        )
    rows.append("| target | >= 0.25 | >= 0.75 | | | | |")
    return "".join(f"{indent}{row}\n" for row in rows)


def _markdown(sentence):
    """`sentence` as Markdown table text (`<unk>` would read as HTML)."""
    return sentence.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") or "(empty)"


def examples_markdown(vae):
    """The README's reconstructions, samples and homotopy of the text VAE,
    in Markdown, from `text_vae_ptb`'s metadata."""
    ex = vae["examples"]

    def table(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_markdown(s) for s in row) + " |" for row in rows]
        return lines

    lines = table(
        ("input", "greedy reconstruction", "beam reconstruction"),
        zip(ex["inputs"], ex["reconstructions_greedy"], ex["reconstructions_beam"]),
    )
    lines += ["", "Samples, z ~ N(0, I), seed 0:", ""]
    lines += table(("sampled words", "greedy words"), zip(ex["samples"], ex["samples_greedy"]))
    lines += ["", "Homotopy (greedy decoding of evenly spaced codes between two sentences):", ""]
    lines += [f"{i}. {_markdown(sentence)}" for i, sentence in enumerate(ex["homotopy"], 1)]
    return "\n".join(lines) + "\n"


def preset_metadata(name):
    """The metadata of preset `name`, built-in or repository-only
    (`zoo.rechecks.repository_presets`), its files checked; `None` when it
    is not trained yet (neither)."""
    if name in presets.registry():
        return presets.load_metadata(name)
    folder = repository_presets().get(name)
    return presets.verify_preset(folder) if folder else None


def _binarization(dataset):
    return "static binarization" if dataset == "binarized_mnist" else dataset


def _our_row(label, name, metadata):
    """The cells of a trained preset's row: everything from its metadata."""
    m = metadata["metrics"]
    nll = "not measured"
    estimator = _binarization(metadata.get("dataset", {}).get("name", ""))
    if "test_nll" in m:
        nll = f"**{m['test_nll']:.2f}** ± {m['test_nll_stderr']:.2f}"
        estimator += (
            f", k = {m['test_nll_importance_samples']:,}, {m['test_nll_images']:,} test images"
        )
    if "test_kl_per_group" in m:  # HierarchicalVAE: top group first
        kl = " / ".join(f"{value:.2f}" for value in m["test_kl_per_group"])
        sizes = [h * w * c for h, w, c in m["latent_shapes"]]
        units = (
            " / ".join(map(str, m["active_units_per_group"]))
            + " of "
            + " / ".join(map(str, sizes))
        )
    else:
        kl = f"{m['test_kl']:.2f}" if "test_kl" in m else ""
        units = f"{m['active_units']} / {m['latent_dim']}"
    hours = metadata["train_seconds"] / 3600
    backend = metadata.get("trained_on_backend", metadata.get("backend"))
    training = f"{hours:.1f} h, {metadata['epochs_completed']} epochs ({backend})"
    return [
        f"{label} (`{name}`)",
        nll,
        estimator,
        f"{m['test_elbo']:.2f}",
        kl,
        units,
        f"{metadata['parameter_count'] / 1e6:.2f}M",
        training,
        metadata["hardware"],
    ]


def published_figures(names, load_recipe=recipes.load):
    """`(source, binarization, k, NLL)` of every published figure in the
    recipes of `names`, in order, each text once. A figure that does not
    state its binarization is left out when the same source (the text
    before its first comma) gives the same figure with its binarization
    stated in another recipe; the others say "not stated"."""
    figures = {}
    for name in names:
        for text, value in load_recipe(name).get("published", {}).items():
            if text != "metric":
                figures.setdefault(text, value)
    stated = [(t.split(",")[0], v) for t, v in figures.items() if "binarization" in t]
    rows = []
    for text, value in figures.items():
        if "binarization" not in text and (text.split(",")[0], value) in stated:
            continue
        binarization = re.search(r",?\s*\b(static|dynamic) binarization", text)
        k = re.search(r",?\s*\bk=(\d+)\s*$", text)
        source = text
        for match in sorted((m for m in (binarization, k) if m), key=lambda m: -m.start()):
            source = source[: match.start()] + source[match.end() :]
        rows.append(
            (
                source.strip(" ,"),
                f"{binarization.group(1)} binarization" if binarization else "not stated",
                f"k = {int(k.group(1)):,}" if k else "not stated",
                value,
            )
        )
    return rows


def binarized_mnist_table(metadata, load_recipe=recipes.load):
    """The README's binarized MNIST comparison, in Markdown: a row per
    preset of `BINARIZED_MNIST_PRESETS` from its metadata (`metadata`: name
    -> metadata dict, or `None` for a preset not trained yet, shown as
    such), then the published figures of their recipes
    (`published_figures`). Test NLL is the importance-sampled bound of the
    project's evaluation (k samples on that many test images); KL per group
    and active units per group are the HierarchicalVAE's, top group first."""
    columns = 9
    rows = [
        "| model | test NLL (nats) | binarization, estimator | test ELBO | KL per group (nats) "
        "| active units | parameters | training | hardware |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    names = [name for name, _ in BINARIZED_MNIST_PRESETS]
    for name, label in BINARIZED_MNIST_PRESETS:
        recipe_model = load_recipe(name).get("model", {})
        if recipe_model.get("objective") == "iwae":
            label += f", k = {recipe_model['num_importance_samples']} in training"
        if metadata.get(name) is None:
            cells = [f"{label} (`{name}`)", "not trained yet"] + [""] * (columns - 2)
        else:
            cells = _our_row(label, name, metadata[name])
        rows.append("| " + " | ".join(cells) + " |")
    for source, binarization, k, value in published_figures(names, load_recipe):
        estimator = f"{binarization}, {k}"
        if binarization == k == "not stated":
            estimator = "binarization and k not stated"
        cells = [f"published: {source}", f"{value:.2f}", estimator]
        rows.append("| " + " | ".join(cells + [""] * (columns - 3)) + " |")
    return "\n".join(rows) + "\n"


def tables():
    """Every rendered table: title -> Markdown."""
    vae, lm, beta, plain = (
        presets.load_metadata(n)
        for n in ("text_vae_ptb", "lstm_lm_ptb", "beta_vae_sprites", "vae_sprites")
    )
    mnist = {name: preset_metadata(name) for name, _ in BINARIZED_MNIST_PRESETS}
    return {
        "binarized MNIST comparison": binarized_mnist_table(mnist),
        "sprites disentanglement": sprites_table(beta, plain),
        "Penn Treebank results": results_table(vae, lm),
        "Penn Treebank examples": examples_markdown(vae),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.render_tables", description=__doc__)
    parser.add_argument("--check", metavar="FILE", help="check that FILE holds every table")
    args = parser.parse_args(argv)
    rendered = tables()
    if args.check:
        text = Path(args.check).read_text()
        missing = [title for title, table in rendered.items() if table not in text]
        for title in missing:
            print(f"{args.check} does not hold the current {title} table", file=sys.stderr)
        return 1 if missing else 0
    for title, table in rendered.items():
        print(f"<!-- {title} -->\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
