"""Train a small network on the embedded digits, and load a bundled reference model (Learn 7, §5)."""
from refquant import nn
from refquant.data import load_digits
from refquant.models import build_mlp, load_reference_model, reference_model_info

x_train, y_train = load_digits("train")        # (1079, 1, 8, 8) float32 in [0, 1], (1079,) int64
x_val, y_val = load_digits("val")
x_test, y_test = load_digits("test")

model = build_mlp(rng=0)                        # Flatten, Linear 64->128, ReLU, Linear 128->64, ReLU, Linear 64->10
optimizer = nn.AdamW(model, lr=3e-3, weight_decay=1e-4)
history = nn.fit(model, x_train, y_train, epochs=10, batch_size=32, optimizer=optimizer,
                 validation_data=(x_val, y_val), seed=0, progress=False)
accuracy = nn.evaluate(model, x_test, y_test)
print("val accuracy per epoch:", [round(a, 3) for a in history.val_accuracy])
print(f"MLP after 10 epochs: test accuracy {accuracy:.4f}")
assert accuracy > 0.9

cnn = load_reference_model("cnn")               # trained weights shipped in the package, no network
info = reference_model_info("cnn")
correct = int((nn.predict(cnn, x_test).argmax(axis=1) == y_test).sum())
print(f"bundled cnn: {correct}/{y_test.size} test images right (recorded: {info['test_correct']})")
assert correct == info["test_correct"] and correct / y_test.size >= 0.97
