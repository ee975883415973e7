"""Post-processing samplers for trained GANs, as pure functions of callables (no model code imported).

    generator: z (B, *zshape) -> x (B, ...)        logit_fn: x (B, ...) -> (B,) discriminator logit d(x)

- `truncation.truncated_normal`  hard truncation of z (BigGAN; StudioGAN unit-std convention)
- `dgflow.dgflow_refine`         Discriminator Gradient flow in latent space (Ansari et al. 2021, official rule)
- `ddls.ddls_refine`             Discriminator Driven Latent Sampling, ULA on ||z||^2/2 - d(G(z)) (Che et al. 2020)
- `drs.drs_sample`               Discriminator Rejection Sampling (Azadi et al. 2019, Alg. 1)
- `drs.calibrate_discriminator`  logistic head a*d + b so hinge/WGAN critics give a log density ratio
- `latent.seeded_normal` / `derived_normal` / `derived_uniform`  per-seed randomness (batch-size invariant)

Each method's options are one strict config in its module (`NoneConfig` in latent, `TruncationConfig`,
`DGflowConfig`, `DDLSConfig`, `DRSConfig`): the functions validate their keyword arguments with it, and
`ganlab.postprocess` registers it as the method's postprocess.yaml entry.

Import from the submodules: this file imports none of them, so a stage that needs per-seed randomness alone
(`latent`) does not depend on the post-processing methods (and is not rerun by DVC when they change).
"""
