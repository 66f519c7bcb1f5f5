"""Wrong and cheating answers to the fill-ins of labs/04_data_based/distillation.ipynb, for the grading test:
each must fail its check (``WRONG``: a plausible mistake; ``CHEAT``: the library's function handed back)."""

WRONG = {
    "my_distillation_loss": '''def my_distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    log_q = (student_logits / T).log_softmax(dim=-1)
    log_p = (teacher_logits / T).log_softmax(dim=-1)
    soft = (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()  # the factor T^2 forgotten
    hard = torch.nn.functional.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard
''',
    "my_distill_step": '''def my_distill_step(student, optimizer, x_labeled, y_labeled, x_transfer, z_teacher, T, alpha):
    hard = torch.nn.functional.cross_entropy(student(x_labeled), y_labeled)
    log_q = (student(x_transfer) / T).log_softmax(dim=-1)
    log_p = (z_teacher / T).log_softmax(dim=-1)
    soft = T**2 * (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
    loss = (1 - alpha) * hard + alpha * soft
    loss.backward()  # no optimizer.zero_grad(): the previous step's gradients add up
    optimizer.step()
    return loss.item()
''',
}

CHEAT = {
    "my_distillation_loss": '''from collab_lib.data_based.distill import distillation_loss as my_distillation_loss
''',
    "my_distill_step": '''from collab_lib.data_based.distill import DistillConfig, train_student


def my_distill_step(student, optimizer, x_labeled, y_labeled, x_transfer, z_teacher, T, alpha):
    cfg = DistillConfig(targets="soft", temperature=T, alpha=alpha, steps=1, lr=0.1, batch_size=10_000)
    return float(train_student(student, x_labeled, y_labeled, x_transfer, z_teacher, cfg)[0])
''',
}
