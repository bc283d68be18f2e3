"""Image classification with several labels per image: labelled image sets (cached), label
encodings, the house photos' room + price tier labels, multilabel and multioutput classifiers,
training, evaluation and predict-labels."""
