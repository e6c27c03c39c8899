"""Gradual against one-shot magnitude pruning of the MLP, with the same training budget (Learn 17, §3)."""
from refquant import nn, prune
from refquant.data import load_digits
from refquant.models import load_reference_model

x_train, y_train = load_digits("train")                               # 1079 images: 34 steps of 32 per epoch
x_test, y_test = load_digits("test")
EPOCHS, BATCH = 6, 32
steps_per_epoch = -(-len(x_train) // BATCH)


def one_shot(final):
    """Prune to `final` at once, then fine-tune all EPOCHS with the masks kept."""
    model = load_reference_model("mlp")
    masks = prune.magnitude_masks(model, final, scope="global")
    opt = nn.Adam(model, lr=1e-3)
    with prune.apply_masks(model, masks, optimizer=opt):
        nn.fit(model, x_train, y_train, epochs=EPOCHS, batch_size=BATCH, optimizer=opt, seed=0, progress=False)
    return model


def gradual(final):
    """AGP over the first 4 epochs, a mask update every half epoch, then 2 epochs at the final sparsity."""
    model = load_reference_model("mlp")
    schedule = prune.PolynomialDecay(0.0, final, begin_step=0, end_step=4 * steps_per_epoch, power=3,
                                     frequency=steps_per_epoch // 2)
    history = prune.prune_gradually(model, x_train, y_train, schedule, epochs=EPOCHS, batch_size=BATCH,
                                    scope="global", seed=0)
    return model, history


print(f"float MLP: {100 * nn.evaluate(load_reference_model('mlp'), x_test, y_test):.2f} % test top-1; "
      f"{EPOCHS} epochs of {steps_per_epoch} steps for each pruned model")
print("| final sparsity | one-shot + fine-tuning | gradual (AGP) | zeros, gradual |")
print("|---:|---:|---:|---:|")
top1 = {}
for final in (0.8, 0.9, 0.95, 0.97):
    model, history = gradual(final)
    top1[final] = (nn.evaluate(one_shot(final), x_test, y_test), nn.evaluate(model, x_test, y_test))
    zeros = prune.sparsity(model).overall
    print(f"| {100 * final:.0f} % | {100 * top1[final][0]:.2f} % | {100 * top1[final][1]:.2f} % | "
          f"{100 * zeros:.2f} % |")
    assert abs(zeros - final) < 1e-3                                   # the schedule reached its target
print("mask updates at steps", history.mask_steps, "to",
      [round(float(s), 3) for s in history.target_sparsity])
assert history.mask_steps == list(range(17, 137, 17))                 # step 0 never comes: the first is at f
assert top1[0.95][1] > top1[0.95][0] + 0.1                            # at 95 % the gradual schedule wins clearly
assert all(abs(one - grad) < 0.03 for one, grad in (top1[0.8], top1[0.9]))   # up to 90 % it makes no difference
