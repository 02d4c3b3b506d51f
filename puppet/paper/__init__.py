"""The paper's other applications, beside puppet control: semantic style transfer, the misalignment
experiment (Fig. 6) and unpaired domain transfer."""
