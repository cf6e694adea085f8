"""A Keras-native face of electra-tf: a pre-trained backbone, a preprocessor, task models.

Every class builds ``from_pretrained(path)`` from anything ``loading.read_weights`` reads (a
pre-training run directory, one of its ``ckpt-N``, a TF1 export, a transformers or
keras-format directory). Task models are ``keras.Model`` subclasses with fine-tuning's heads
and weight names, so ``compile``/``fit``/``evaluate``/``predict`` and Keras callbacks work
as usual, and ``compile()`` with no arguments gives ``run_finetuning.py``'s optimizer
(same scores for the same settings). Example::

    import keras, tensorflow as tf
    from electra_tf.models import ElectraClassifier

    # A pre-training run directory, a tf1/ export, a released or transformers model...
    model = ElectraClassifier.from_pretrained("data/models/electra_small", num_classes=2,
                                              sequence_length=128)
    model.compile()   # AdamWeightDecay: warm-up, linear decay, layer-wise LR decay
    train = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(10_000).batch(32)
    model.fit(train, epochs=3, callbacks=[keras.callbacks.CSVLogger("train_log.csv")])
    model.evaluate(dev_texts, dev_labels)       # loss (per example), accuracy, cross_entropy
    logits = model.predict((premises, hypotheses))  # a tuple of two lists: text pairs
    model.save("sst.keras")                     # keras.models.load_model("sst.keras") later
    model.export("sst_served")                  # a SavedModel serving raw strings

``ElectraTokenTagger`` and ``ElectraQuestionAnswerer`` work the same way; the backbone alone
is ``ElectraBackbone.from_pretrained(path)``, the preprocessor (a Keras layer of TensorFlow
ops) ``ElectraPreprocessor.from_pretrained(path, sequence_length)``. Importing this package
registers every class with Keras, so ``keras.models.load_model`` needs no custom_objects.
"""

from electra_tf.models.backbone import ElectraBackbone
from electra_tf.models.classifier import ElectraClassifier
from electra_tf.models.preprocessor import ElectraPreprocessor
from electra_tf.models.question_answerer import ElectraQuestionAnswerer
from electra_tf.models.task import ElectraTask
from electra_tf.models.token_tagger import ElectraTokenTagger

__all__ = ["ElectraBackbone", "ElectraClassifier", "ElectraPreprocessor",
           "ElectraQuestionAnswerer", "ElectraTask", "ElectraTokenTagger"]
