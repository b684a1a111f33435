from setuptools import find_packages, setup

setup(
    name="ide",
    version="0.1.0",
    description="Face photo-sketch synthesis via intra-domain enhancement (IDE): MWF stage 1 + MLA-GAN stage 2",
    packages=find_packages(include=["ide", "ide.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.24",
        "scipy>=1.10",
        # OpenCV 5 dropped CascadeClassifier and the bundled Haar cascades (ide align needs them).
        "opencv-python-headless>=4.8,<5",
        "pyyaml>=6",
        "tensorboard>=2.12",
        "scikit-image>=0.21",
        "tqdm>=4.60",
        "pillow>=9.5",
        "matplotlib>=3.7",
    ],
    extras_require={"dev": ["pytest>=7", "ruff>=0.4", "piq>=0.8"]},
    entry_points={"console_scripts": ["ide=ide.cli:main"]},
)
