"""CENG403 THE3, task 2: my CNN (a student's file, as it is handed in).

Three conv layers (3x3, padding 1) with ReLU and 2x2 max-pooling: 16, 32 and 64 filters, then
two fully connected layers (128 hidden units, then one output per class).

Train it with cnn-tui (docs/training/own-model.md):

    cnn-tui train --no-ui --model assets/examples/the3_student_cnn.py:StudentCNN \
        --dataset fashion-mnist --epochs 5

cnn-tui builds the class with the arguments its __init__ names: input_shape (the images'
channels), output_shape (the number of classes) and image_size (their size in pixels).
"""

import torch
from torch import nn


class StudentCNN(nn.Module):
    def __init__(self, input_shape: int, output_shape: int, image_size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.relu = nn.ReLU()
        # three 2x2 poolings: 28 px -> 14 -> 7 -> 3 (the sizes floor)
        side = image_size // 2 // 2 // 2
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, output_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.pool(self.relu(self.conv3(x)))
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        return self.fc2(x)  # logits: CrossEntropyLoss applies the softmax
