"""Each flow's typed config: what the UI form and the CLI show is what the flow reads."""

from __future__ import annotations

from flows.__main__ import build_parser
from flows.config import ClassifyConfig, CompareConfig, TrainConfig, options_for
from tasks.classify.options import ClassifierOptions
from tasks.price.options import PriceOptions


def test_compare_shows_no_field_it_ignores(capsys):
    assert {"strategy", "trainer", "cv"}.isdisjoint(CompareConfig.model_fields)
    assert {"strategy", "trainer", "cv"}.isdisjoint(CompareConfig.model_json_schema()["properties"])
    parser = build_parser()
    compare = parser._subparsers._group_actions[0].choices["compare"]  # the sub-command's own parser
    options = {o for action in compare._actions for o in action.option_strings}
    assert {"--strategies", "--trainers", "--epochs"} <= options
    assert not {"--strategy", "--trainer", "--cv"} & options


def test_stage_options_take_what_was_given_and_the_stage_defaults_otherwise():
    assert TrainConfig(strategy="cnn").training_options().small_pooling == "average"  # the cnn's own default
    assert TrainConfig(strategy="cnn", small_pooling="flatten").training_options().small_pooling == "flatten"
    compare = CompareConfig(epochs=3, batch_size=4)
    options = compare.training_options("cnn", "stream")
    assert (options.strategy, options.trainer, options.epochs, options.batch_size, options.small_pooling) == (
        "cnn", "stream", 3, 4, "average")
    assert ClassifyConfig(epochs=5).classifier_options() == ClassifierOptions(epochs=5)
    assert options_for(PriceOptions, TrainConfig(), strategy="mlp") == PriceOptions(strategy="mlp")
    # a strategy's own defaults (the cnn's loss and target, the mixed model's fusion) are not "given" to another
    assert options_for(PriceOptions, TrainConfig(strategy="cnn"), strategy="mlp") == PriceOptions(strategy="mlp")
    given = TrainConfig(strategy="cnn", loss="mape", target="scaled", epochs=7)
    assert options_for(PriceOptions, given, strategy="mlp") == PriceOptions(strategy="mlp", loss="mape",
                                                                           target="scaled", epochs=7)


def test_every_commands_help_reads_as_plain_text():
    """argparse formats option help with %, not a command's description: a '%%' there reaches the screen."""
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"train", "preprocess", "synthetic-data"} <= set(commands)
    for name, command in commands.items():
        text = command.format_help()
        assert "%%" not in text and "%(" not in text, name
