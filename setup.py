"""Packaging from settings.ini, as nbdev 2.4 projects do."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
scripts = [s.strip() for s in cfg.get('console_scripts', '').split('\n') if s.strip()]

setuptools.setup(
    name=cfg['lib_name'].replace('_', '-'),
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'],
    license='Apache-2.0', keywords=cfg['keywords'],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['reasoning_nb', 'reasoning_nb.*']),
    include_package_data=True,
    package_data={'reasoning_nb': ['assets/*', 'assets/*/*']},
    python_requires='>=' + cfg['min_python'],
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    entry_points={'console_scripts': scripts, 'nbdev': ['reasoning_nb=reasoning_nb._modidx:d']},
    zip_safe=False,
)
