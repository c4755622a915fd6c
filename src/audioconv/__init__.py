"""audioconv: spot a spoken keyword with small convolutional networks.

A CNN is a small detector scanned along the signal with shared weights; this
package trains such detectors (raw-waveform and spectrogram front ends) and scans
long recordings with them.
"""

__version__ = "0.1.0"
