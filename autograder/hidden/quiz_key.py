"""The quiz's answer key. Never shipped: lives only in the grader's hidden package."""

KEY = {"q1": "D", "q2": "B", "q3": "C", "q4": "A", "q5": "D",
       "q6": "B", "q7": "C", "q8": "A", "q9": "D", "q10": "B"}

# Where to look again after a wrong answer (never the answer itself).
HINTS = {
    "q1": "what does the one argument of nn.BatchNorm1d / nn.BatchNorm2d count? (01_batch_norm, 'FC vs conv layers')",
    "q2": "which quantities does BN learn by gradient descent, and which are set by hand? (01_batch_norm)",
    "q3": "what happens to a plain deep CNN when layers keep being added? (02_resnet, introduction)",
    "q4": "what does a transition layer control between two dense blocks? (03_densenet)",
    "q5": "a dense block's output is its input concatenated with every conv block's output (03_densenet).",
    "q6": "d2l's momentum is the weight of the OLD value; PyTorch's momentum is the weight of the NEW batch.",
    "q7": "which statistics does BN use after model.eval(), and does it still update them? (01_batch_norm)",
    "q8": "PyTorch normalises with the biased variance but stores the UNBIASED one (divide by m - 1) in running_var.",
    "q9": "channels: in + num_convs * growth_rate, then the transition layer halves channels and height/width.",
    "q10": "model.train() switches every submodule back to training mode; requires_grad alone does not stop running stats.",
}
