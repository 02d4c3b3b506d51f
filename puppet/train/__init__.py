"""Training: the shared loop (``loop``), a puppet of a target video (``target``), with the crop chosen
by two short trials (``crop``), a single portrait (``single``) and a prior over several people
(``prior``)."""
