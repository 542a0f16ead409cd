"""Renders the README's result tables from the presets' metadata.

Usage:

    python -m zoo.render_tables            # prints every table
    python -m zoo.render_tables --check README.md

The tables are rendered from what each preset's `metadata.json` measured,
never typed by hand; `--check FILE` exits with status 1 when FILE does not
hold them exactly (tests/zoo/text_presets_test.py does the same).
"""

import argparse
import sys
from pathlib import Path

from keras_vae import presets


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


def tables():
    """Every rendered table: title -> Markdown."""
    vae, lm, beta, plain = (
        presets.load_metadata(n)
        for n in ("text_vae_ptb", "lstm_lm_ptb", "beta_vae_sprites", "vae_sprites")
    )
    return {
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
