"""Plain ``nn.Module`` models assembled from components; no Lightning here."""

from dlbench.models.autoencoder import AutoEncoder
from dlbench.models.cnn import CNN, MinPool2d
from dlbench.models.conv1d import Conv1dEncoder, Conv1dNet
from dlbench.models.encoder import ConvEncoder, EncoderClassifier, PretextNet
from dlbench.models.linear import LinearRegression, LogisticRegression, SoftmaxRegression
from dlbench.models.mlp import MLP, gated_width
from dlbench.models.resnet import BasicBlock, ResNet
from dlbench.models.rnn import SequenceModel

__all__ = [
    "CNN",
    "Conv1dEncoder",
    "Conv1dNet",
    "MLP",
    "AutoEncoder",
    "BasicBlock",
    "ConvEncoder",
    "EncoderClassifier",
    "LinearRegression",
    "LogisticRegression",
    "MinPool2d",
    "PretextNet",
    "ResNet",
    "SequenceModel",
    "SoftmaxRegression",
    "gated_width",
]
