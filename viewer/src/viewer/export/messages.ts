import { registerMessages } from '../../i18n';

registerMessages({
  'zh-CN': {
    'export.png': 'PNG', 'export.png.title': '将当前视口下载为 PNG 图像',
    'export.jpeg': 'JPEG', 'export.jpeg.title': '将当前视口下载为 JPEG 图像',
    'export.identifiers': '含患者信息', 'export.identifiers.title': '导出图像中写入患者姓名、ID 和检查日期（默认不含）',
    'export.band': '信息条', 'export.band.title': '在导出图像底部写入不含身份的信息（设备、序列、图像号、窗宽窗位）',
    'export.print': '打印', 'export.print.title': '打印当前各视口的图像',
    'export.nothing': '当前视口没有可导出的图像。', 'export.saved': '已导出 {name}',
    'export.bandText': '{modality} 序列 {series} · 图像 {index}/{count} · 窗宽 {width} 窗位 {center}',
    'export.printTitle': '云影影像', 'export.printedAt': '打印时间 {time}',
  },
  en: {
    'export.png': 'PNG', 'export.png.title': 'Download the current viewport as a PNG image',
    'export.jpeg': 'JPEG', 'export.jpeg.title': 'Download the current viewport as a JPEG image',
    'export.identifiers': 'With patient data', 'export.identifiers.title': "Write the patient's name, ID and study date into exported images (off by default)",
    'export.band': 'Info band', 'export.band.title': 'Write non-identifying information (modality, series, image, window) at the bottom of exported images',
    'export.print': 'Print', 'export.print.title': 'Print the images of the viewports',
    'export.nothing': 'The current viewport has no image to export.', 'export.saved': '{name} exported',
    'export.bandText': '{modality} series {series} · image {index}/{count} · W {width} L {center}',
    'export.printTitle': 'Yunying imaging', 'export.printedAt': 'Printed {time}',
  },
});
